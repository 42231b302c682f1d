"""Map furniture shared by the printed maps (profiles, the printable map): scale bars and labels.

Boxes are ``(x0, y0, x1, y1)`` with ``x0 <= x1`` and ``y0 <= y1`` in any one unit (SVG pixels
for profiles, display points for matplotlib): the functions only compare them.
"""

from collections.abc import Sequence
from functools import cache

import shapely

SCALE_LENGTHS_M = (100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 25_000, 50_000)
AVERAGE_CHAR_EM = 0.62
"""DejaVu Sans's widest average advance (capitals and digits), used when the font file is
missing: an over-estimate, so a label measured this way never under-covers its text."""


def nice_length(span_m: float) -> int:
    """A round scale-bar length near a quarter of the map's width ``span_m`` (metres)."""
    target = span_m / 4
    return next((length for length in SCALE_LENGTHS_M if length >= target), SCALE_LENGTHS_M[-1])


def scale_words(length_m: int) -> str:
    """ "500 m", "2 km", "2.5 km"."""
    return f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m} m"


def overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when two boxes share more than an edge."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def padded(box: Sequence[float], pad: float) -> tuple[float, float, float, float]:
    return box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad


def place_labels(
    boxes: Sequence[Sequence[float]], obstacles: Sequence[Sequence[float]] = (), pad: float = 1.0
) -> list[int]:
    """Indices of the labels to draw: ``boxes`` come in priority order (most important first);
    a label is kept when its box (grown by ``pad``) meets no obstacle and no label already kept,
    else dropped. Greedy, as map labelling usually is: a dropped label never moves another."""
    kept: list[int] = []
    for index, box in enumerate(boxes):
        grown = padded(box, pad)
        if any(overlaps(grown, other) for other in obstacles):
            continue
        if any(overlaps(grown, boxes[other]) for other in kept):
            continue
        kept.append(index)
    return kept


@cache
def _font(size: float, bold: bool = False):
    """DejaVu Sans (the font WeasyPrint and matplotlib draw with here), or its bold, at ``size``
    pixels, or None when Pillow cannot find it."""
    try:
        from PIL import ImageFont

        return ImageFont.truetype("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", size)
    except (ImportError, OSError):
        return None


def text_width(text: str, size: float) -> float:
    """The width of ``text`` in DejaVu Sans at ``size`` (pixels or points: same unit out)."""
    font = _font(size)
    if font is None:
        return len(text) * AVERAGE_CHAR_EM * size
    return float(font.getlength(text))


PRINT_EM = 2048
"""DejaVu's units per em: advances measured at this size are the font's own, unrounded."""


def print_width(text: str, size: float, bold: bool = False) -> float:
    """The width of ``text`` in DejaVu Sans (Bold) at ``size`` as Pango sets it in a PDF: the
    unhinted advances with kerning (within 0.05 px of WeasyPrint's at 8-9 pt, where
    `text_width`'s hinted ones are up to 0.3% short). Without the font file, an over-estimate."""
    font = _font(PRINT_EM, bold)
    if font is None:
        return len(text) * AVERAGE_CHAR_EM * size * (1.1 if bold else 1.0)
    return float(font.getlength(text)) * size / PRINT_EM


def quietest_corner(corners: Sequence[Sequence[float]], busy) -> int:
    """The index of the box in ``corners`` that covers least of ``busy`` (a shapely geometry
    in the same units: what the map must not hide, such as the area of a profile), the first
    on a tie; so a scale bar goes where it hides nothing, or the least."""
    covered = [shapely.box(*corner).intersection(busy).area for corner in corners]
    return covered.index(min(covered))
