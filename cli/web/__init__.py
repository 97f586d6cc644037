"""The web app of ``billing serve`` (Flask, jinja2, htmx): see ``cli.web.app``."""
