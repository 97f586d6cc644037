"""Stage 3, price: a line's allowed amount from the CMS files, who pays what, money."""
