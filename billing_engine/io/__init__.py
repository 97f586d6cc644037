"""Stage 1, in: the interchange bundle and the files around it.

The bundle's schema, the readers of CSV/Parquet/xlsx folders (with their input limits)
and of the CMS fee files, and the safe writing of files.
"""
