"""Postcode keys: the one normal form every join on a postcode uses."""

import pandas as pd


def pcd_key(postcodes: pd.Series) -> pd.Series:
    """Normalise postcodes for joining: upper case, no spaces ("l1 8jq" -> "L18JQ")."""
    return postcodes.astype("string").str.upper().str.replace(r"\s+", "", regex=True)


def pcd_display(keys: pd.Series) -> pd.Series:
    """Format normalised keys the Royal Mail way, inward code after a single space."""
    return keys.str[:-3] + " " + keys.str[-3:]
