"""Several digits written side by side ("2025") -> one 28x28 image per digit, left to right.

Connected pieces of ink are found, pieces that belong to one digit are merged
(a 5's lifted bar, a 4 in two strokes, a 7's crossbar), blobs as wide as a digit
or more are tried whole and cut in two (where the ink thins, or along a path that
goes round it, for digits that lean into each other), the network choosing the
reading it is surest of, and each digit then goes through the same MNIST recipe
as a single drawing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from draw2digit.decode import ImageInput, to_pil_or_array
from draw2digit.preprocess import INK_THRESHOLD, MIN_CONTRAST, Preprocessed, ink_map, to_mnist

#: Bounds on the work of trying cuts in one drawing (see ``split_digits``).
MAX_CUT_IMAGES = 96
MAX_CUT_PIXELS = 16_000_000
#: A piece shorter than this share of the typical digit is part of a digit (a 2's tail, a
#: 9's stem drawn apart), never a digit of its own: digits side by side are about as tall.
SHORTEST = 0.6
#: Each cut is tried again with the ink within this many pen widths of it on both sides
#: (see ``shared_ink_cuts``).
SHARED_INK = 0.5


def _merge_overlapping(boxes: list[list[int]]) -> list[list[int]]:
    """Merge boxes whose column spans mostly overlap: pieces of one digit drawn apart.

    A 5's top bar, a 4 drawn in two strokes and a 7's crossbar sit above or across
    their digit; neighbouring digits overlap at most at their edges.
    """
    merged = True
    while merged:
        merged = False
        boxes.sort(key=lambda b: b[0])
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                overlap = min(a[2], b[2]) - max(a[0], b[0])
                narrower = min(a[2] - a[0], b[2] - b[0])
                if narrower > 0 and overlap > 0.3 * narrower:
                    boxes[i] = [
                        min(a[0], b[0]),
                        min(a[1], b[1]),
                        max(a[2], b[2]),
                        max(a[3], b[3]),
                        *a[4:],
                        *b[4:],
                    ]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _merge_flat_pieces(boxes: list[list[int]], tallest: int) -> list[list[int]]:
    """A flat stroke on its own (a 5's bar, a 7's crossbar) joins the nearest digit."""
    flat = [b for b in boxes if b[3] - b[1] < 0.3 * tallest and len(boxes) > 1]
    for piece in flat:
        others = [b for b in boxes if b is not piece]
        if not others:
            break

        gaps = [max(0, max(b[0], piece[0]) - min(b[2], piece[2])) for b in others]
        target = others[int(np.argmin(gaps))]
        if min(gaps) > 0.5 * tallest:
            continue
        boxes.remove(piece)
        target[:4] = [
            min(target[0], piece[0]),
            min(target[1], piece[1]),
            max(target[2], piece[2]),
            max(target[3], piece[3]),
        ]
        target.extend(piece[4:])
    return boxes


def _split_wide(mask: np.ndarray, box: list[int], digit_height: float) -> list[tuple[int, int]]:
    """Column ranges of the digits inside one over-wide component (touching digits).

    A single handwritten digit can be a little wider than tall, so only a
    component about 1.5 digit heights wide or more is split, and only where the
    ink thins to a real valley (at most half the typical column's ink).
    """
    left, top, right, bottom = box[:4]
    width = right - left
    count = max(1, round(width / max(digit_height, 1)))
    if count == 1:
        return [(left, right)]
    columns = mask[top:bottom, left:right].sum(axis=0).astype(float)
    typical = float(np.median(columns[columns > 0])) if (columns > 0).any() else 0.0
    cuts = []
    for k in range(1, count):
        centre = k * width / count
        lo, hi = int(centre - 0.25 * width / count), int(centre + 0.25 * width / count) + 1
        cut = lo + int(np.argmin(columns[lo:hi]))
        if columns[cut] <= 0.5 * typical:
            cuts.append(cut)
    edges = [0, *cuts, width]
    return [(left + a, left + b) for a, b in itertools.pairwise(edges) if b > a]


def _valleys(mask: np.ndarray, left: int, right: int, most: int = 3) -> list[int]:
    """Up to ``most`` columns in the middle of a component where the ink thins, emptiest first.

    Candidates are kept apart by a tenth of the width, so they are different places to cut.
    """
    columns = mask[:, left:right].sum(axis=0).astype(float)
    width = right - left
    lo, hi = width // 5, 4 * width // 5 + 1
    if hi - lo < 2:
        return []
    thin = 0.8 * float(np.median(columns[columns > 0]))
    cuts: list[int] = []
    for c in lo + np.argsort(columns[lo:hi], kind="stable"):
        if columns[c] >= thin or len(cuts) == most:
            break
        if all(abs(c - k) > width / 10 for k in cuts):
            cuts.append(int(c))
    return [left + c for c in cuts]


def _seams(region: np.ndarray, most: int = 3) -> list[np.ndarray]:
    """Up to ``most`` top-to-bottom paths through the middle of a blob that cross the least ink.

    Touching digits overlap or lean into each other, so no straight column parts
    them; a path that may step one pixel sideways per row goes round the ink.
    Returned as one column per row, paths ending apart by a tenth of the width.
    """
    h, w = region.shape
    lo, hi = w // 5, 4 * w // 5 + 1
    if hi - lo < 2 or h < 2:
        return []
    cost = region[:, lo:hi].astype(np.float64) + 0.01  # a little for length: no needless detours
    n = hi - lo
    padded = np.full(n + 2, np.inf)  # the best cost to reach each column, with walls either side
    padded[1:-1] = cost[0]
    back = np.zeros(cost.shape, np.int8)
    steps = np.empty((3, n))
    index = np.arange(n)
    for y in range(1, h):
        steps[0], steps[1], steps[2] = padded[:-2], padded[1:-1], padded[2:]
        k = steps.argmin(axis=0)
        back[y] = k - 1
        padded[1:-1] = steps[k, index] + cost[y]
    acc = padded[1:-1]
    seams: list[np.ndarray] = []
    for end in np.argsort(acc, kind="stable"):
        if len(seams) == most:
            break
        if any(abs(int(end) - int(s[-1] - lo)) <= w / 10 for s in seams):
            continue
        path = np.empty(h, np.int64)
        x = int(end)
        for y in range(h - 1, -1, -1):
            path[y] = x + lo
            x += int(back[y, x])
        seams.append(path)
    return seams


def piece_image(
    ink: np.ndarray, keep: np.ndarray, left: int, right: int, *, normalize_strokes: bool = True
) -> Preprocessed | None:
    """The ink of ``keep`` between columns ``left`` and ``right``, prepared as one digit (None if blank).

    Shared by the reader and by training on cut pieces, so the network learns from
    pieces prepared exactly as the reader prepares them.
    """
    part = np.where(keep[:, left:right], ink[:, left:right], np.float32(0.0))
    rows = np.flatnonzero(part.max(axis=1) > INK_THRESHOLD)
    if rows.size == 0:
        return None
    item = to_mnist(part[rows[0] : rows[-1] + 1], normalize_strokes=normalize_strokes)
    if item.blank:
        return None
    l0, t0, r0, b0 = item.box
    size = (ink.shape[1], ink.shape[0])
    return Preprocessed(item.image, False, (left + l0, int(rows[0]) + t0, left + r0, int(rows[0]) + b0), size)


def cut_sides(
    ink: np.ndarray, mask: np.ndarray, keep: np.ndarray, left: int, right: int
) -> tuple[int, int, list[np.ndarray]]:
    """The reader's candidate cuts of one blob: (top, bottom, one "left of the cut" mask per cut).

    The masks cover rows ``top:bottom`` and columns ``left:right``; cuts along
    straight columns where the ink thins come first, then paths round the ink.
    Cuts that part the blob's ink the same way are given once.
    """
    rows = np.flatnonzero(keep[:, left:right].any(axis=1))
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    region = np.where(keep[top:bottom, left:right], ink[top:bottom, left:right], np.float32(0.0))
    columns = np.arange(left, right)
    sides = [np.broadcast_to(columns < cut, region.shape) for cut in _valleys(mask & keep, left, right)]
    sides += [columns[None, :] < (left + seam)[:, None] for seam in _seams(region)]
    unique, seen = [], set()
    for side in sides:
        key = np.packbits(keep[top:bottom, left:right] & side).tobytes()
        if key not in seen:  # paths round the same ink: the same two halves
            seen.add(key)
            unique.append(side)
    return top, bottom, unique


def shared_ink_cuts(blob: np.ndarray, sides: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each cut's two halves, then each cut again with the ink near it given to both halves.

    Where two digits touch, the ink they share goes to one side of any cut, and the
    other digit comes out open (a 0 that lost its left edge reads as 3). Trying the
    cut a second time with a band of ``SHARED_INK`` pen widths on both halves gives
    both digits back whole; the reader keeps whichever reading it is surer of (a
    wrong band reading sometimes wins: 0.3-0.6 points on the tuning writers' numbers,
    docs/real-drawings.md). ``blob`` and the masks cover the same rows and columns;
    the pen width is the blob's area over half its edge.
    """
    pairs = [(side, ~side) for side in sides]
    edge = blob & ~ndimage.binary_erosion(blob)
    band = SHARED_INK * 2 * float(blob.sum()) / max(1, int(edge.sum()))
    columns = np.arange(blob.shape[1])[None, :]
    for side in sides:
        near = np.abs(columns - side.sum(axis=1)[:, None]) <= band
        pairs.append((side | near, ~side | near))
    return pairs


@dataclass(frozen=True)
class Piece:
    """A candidate digit: which ink pixels are its own (``keep``) and the columns it spans."""

    keep: np.ndarray  # (h, w) bool over the whole drawing
    left: int
    right: int


@dataclass
class _Reader:
    """One drawing being read: its ink, its blobs, and the work spent trying cuts so far.

    Cuts are tried recursively, and a long scribble on a big canvas must not take
    seconds: ``images_read`` and ``pixels_prepared`` are checked against
    ``MAX_CUT_IMAGES`` and ``MAX_CUT_PIXELS`` (every real number stays far below both).
    """

    ink: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    boxes_by_label: dict[int, list[int]]
    tallest: int
    digit_height: int
    confidence: Callable[[list[np.ndarray]], list[float]] | None
    normalize_strokes: bool
    images_read: int = 0
    pixels_prepared: int = 0

    def digit_in(self, piece: Piece) -> Preprocessed | None:
        return piece_image(
            self.ink, piece.keep, piece.left, piece.right, normalize_strokes=self.normalize_strokes
        )

    def pieces_of(self, b: list[int]) -> list[Preprocessed] | None:
        """The components merged into ``b``, read one by one (flat bars still joined), if all are digits."""
        groups = _merge_flat_pieces([[*self.boxes_by_label[lab][:4], lab] for lab in b[4:]], self.tallest)
        if len(groups) < 2:
            return None
        for g, h in itertools.permutations(groups, 2):  # a stroke inside another's box is part of it
            if g[0] >= h[0] and g[1] >= h[1] and g[2] <= h[2] and g[3] <= h[3]:
                return None
        if any(g[3] - g[1] < SHORTEST * self.digit_height for g in groups):  # a 9's tail, a 4's stem
            return None
        parts = []
        for g in groups:
            part = self.digit_in(Piece(np.isin(self.labels, g[4:]), g[0], g[2]))
            if part is None:
                return None
            parts.append(part)
        return parts

    def _half(self, piece: Piece, top: int, bottom: int, side: np.ndarray) -> Piece | None:
        """One side of a cut of ``piece`` (rows ``top:bottom``), if it is tall enough to be a digit."""
        keep = np.zeros_like(piece.keep)
        keep[top:bottom, piece.left : piece.right] = piece.keep[top:bottom, piece.left : piece.right] & side
        cols = np.flatnonzero(keep.any(axis=0))
        ink_rows = np.flatnonzero(keep[top:bottom].any(axis=1))
        tall = ink_rows.size and ink_rows[-1] + 1 - ink_rows[0] >= SHORTEST * self.digit_height
        return Piece(keep, int(cols[0]), int(cols[-1]) + 1) if tall else None

    def reading(
        self, piece: Piece, whole: Preprocessed, sure: float | None, depth: int = 0
    ) -> tuple[list[Preprocessed], float]:
        """The likeliest reading of one blob: (its digits, the least sure of them).

        A blob as wide as a digit or more may be touching digits: it is read whole
        and cut in two at each candidate, each half read the same way in turn, and
        the reading whose least sure digit is surest wins. ``sure`` is the
        classifier's confidence in ``whole``, None when not asked yet.
        """
        unread = 0.0 if sure is None else sure  # a blob not worth cutting needs no score
        left, right = piece.left, piece.right
        if self.confidence is None or right - left <= 0.8 * self.digit_height or depth >= 5:
            return [whole], unread
        if self.images_read > MAX_CUT_IMAGES or self.pixels_prepared > MAX_CUT_PIXELS:
            return [whole], unread
        top, bottom, sides = cut_sides(self.ink, self.mask, piece.keep, left, right)
        options: list[tuple[list[Piece], list[Preprocessed]]] = []
        for pair in shared_ink_cuts(piece.keep[top:bottom, left:right], sides):
            halves = [self._half(piece, top, bottom, side) for side in pair]
            if all(halves):
                self.pixels_prepared += (bottom - top) * (right - left)
                if self.pixels_prepared > MAX_CUT_PIXELS:
                    break
                digits = [self.digit_in(h) for h in halves]
                if all(d is not None for d in digits):
                    options.append((halves, digits))
        if not options:
            return [whole], unread
        images = [d.image for _, ds in options for d in ds]
        if sure is None:  # the whole in the same batch as its halves
            sure, *conf = self.confidence([whole.image, *images])
        else:
            conf = self.confidence(images)
        self.images_read += len(images)
        best: tuple[list[Preprocessed], float] = ([whole], sure)
        for i, (halves, digits) in enumerate(options):
            sures = conf[2 * i : 2 * i + 2]
            parts = [self.reading(h, d, c, depth + 1) for h, d, c in zip(halves, digits, sures, strict=True)]
            score = min(s for _, s in parts)
            if score > best[1]:
                best = ([d for ds, _ in parts for d in ds], score)
        return best

    def read_blob(self, b: list[int]) -> list[Preprocessed]:
        """The digits in one blob (``b``: its box and the labels of the components merged into it)."""
        keep = np.isin(self.labels, b[4:])  # only this digit's own strokes, not a neighbour's edge
        if self.confidence is not None and len(b) > 5:  # pieces merged by their overlap: two digits, or one?
            pieces = self.pieces_of(b)
            whole = self.digit_in(Piece(keep, b[0], b[2]))
            if pieces and whole is not None:
                whole_conf, *piece_conf = self.confidence([whole.image] + [p.image for p in pieces])
                if min(piece_conf) > whole_conf:
                    return pieces
        if self.confidence is not None:
            whole = self.digit_in(Piece(keep, b[0], b[2]))
            return [] if whole is None else self.reading(Piece(keep, b[0], b[2]), whole, None)[0]
        found = []
        for left, right in _split_wide(self.mask & keep, b, self.digit_height):
            whole = self.digit_in(Piece(keep, left, right))
            if whole is not None:
                found.append(whole)
        return found


def split_digits(
    source: ImageInput,
    *,
    normalize_strokes: bool = True,
    confidence: Callable[[list[np.ndarray]], list[float]] | None = None,
) -> list[Preprocessed]:
    """Several digits written side by side -> one :class:`Preprocessed` per digit, left to right.

    Each digit's ``box`` is in the input's pixels. An empty drawing gives ``[]``.
    Touching digits are one blob of ink; given ``confidence`` (28x28 images ->
    the classifier's confidence that each is one digit), a blob that could be
    several digits is cut in two at its thin columns or along paths round its ink,
    each half in turn, and pieces merged because their columns overlap (a slanted
    neighbour, or a 4 in two strokes?) are read apart, when the classifier is surer
    of every part than of the whole. Without it, only blobs about 1.5 digit heights
    wide are cut, where the ink thins.
    """
    ink = ink_map(to_pil_or_array(source))
    if float(ink.max(initial=0.0)) < MIN_CONTRAST:
        return []
    mask = ink > max(INK_THRESHOLD, 0.25 * float(ink.max()))
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        return []
    slices = ndimage.find_objects(labels)
    boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop, i + 1] for i, s in enumerate(slices)]
    boxes_by_label = {b[4]: list(b) for b in boxes}
    tallest = max(b[3] - b[1] for b in boxes)
    areas = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    # Specks (noise, a stray dot) are neither digits nor parts of one.
    boxes = [
        b
        for b in boxes
        if max(b[2] - b[0], b[3] - b[1]) >= 0.3 * tallest or areas[b[4] - 1] >= 0.05 * areas.max()
    ]
    boxes = _merge_flat_pieces(_merge_overlapping(boxes), tallest)
    heights = sorted(b[3] - b[1] for b in boxes)
    reader = _Reader(
        ink, mask, labels, boxes_by_label, tallest, heights[len(heights) // 2], confidence, normalize_strokes
    )
    results = [digit for b in boxes for digit in reader.read_blob(b)]
    results.sort(key=lambda p: (p.box[0] + p.box[2]) / 2)
    return results
