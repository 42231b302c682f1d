"""The map's files built from stored projects, removed when a stored position turns private."""

from pathlib import Path

from kindred_map.paths import PUBLISHED_DATA_DIR, PUBLISHED_PROJECT_FILES


def forget_published_positions(folder: Path = PUBLISHED_DATA_DIR) -> list[Path]:
    """Remove the map's files built from the store's projects (marker positions, popups, the
    map's script carrying the positions: `kindred_map.paths.PUBLISHED_PROJECT_FILES`), called
    when a save makes a stored position private (and by whole-store writes): the files
    holding it are no longer served (Streamlit answers 404), not kept for the days
    `kindred_map.assets.publish` keeps old files. The dashboard writes new ones on its next
    run (the store changed). Returns the files removed."""
    removed = []
    for prefix in PUBLISHED_PROJECT_FILES:
        for path in Path(folder).glob(f"{prefix}-*"):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
