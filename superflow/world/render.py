"""Rendering a GenEval metadata record to a small image, exactly as it asks.

Objects are placed by rejection sampling (inside the canvas, 2 px apart, relations true under
GenEval's own position rule), so each render is a ground-truth example of its prompt. Rendering
takes well under a millisecond at 32 px, so training data is rendered on the fly.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from superflow.evaluation.geneval_rules import relative_position
from superflow.world.spec import BACKGROUND, COLOURS, SHAPES

_MAX_TRIES = 200


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, float, float, float], colour) -> None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=colour)
    elif shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=colour)
    elif shape == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=colour)
    elif shape == "ring":
        t = max(1.5, (x1 - x0) / 4)
        draw.ellipse([x0, y0, x1, y1], outline=colour, width=int(round(t)))
    elif shape == "cross":
        t = max(2.0, (x1 - x0) / 4)
        draw.rectangle([cx - t / 2, y0, cx + t / 2, y1], fill=colour)
        draw.rectangle([x0, cy - t / 2, x1, cy + t / 2], fill=colour)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


def scene_objects(metadata: dict, rng: np.random.Generator) -> list[tuple[str, str, int | None, list | None]]:
    """(class, colour, group index, position) for every object instance the record asks for."""
    objects = []
    for group, item in enumerate(metadata["include"]):
        for _ in range(int(item.get("count", 1))):
            colour = item.get("color") or str(rng.choice(list(COLOURS)))
            objects.append((item["class"], colour, group, item.get("position")))
    return objects


def render_scene(metadata: dict, size: int = 32, rng: np.random.Generator | None = None) -> np.ndarray:
    """uint8 [size, size, 3] showing exactly the objects, counts, colours and relations asked for."""
    rng = rng if rng is not None else np.random.default_rng()
    objects = scene_objects(metadata, rng)
    scale = size / 32
    lo, hi = (7 if len(objects) <= 2 else 6) * scale, (12 if len(objects) <= 2 else 8) * scale
    for _ in range(_MAX_TRIES):
        boxes = []
        ok = True
        for _obj in objects:
            side = rng.uniform(lo, hi)
            for _inner in range(50):
                x0, y0 = rng.uniform(1, size - 1 - side, size=2)
                box = (x0, y0, x0 + side, y0 + side)
                if all(
                    box[2] + 2 < b[0] or b[2] + 2 < box[0] or box[3] + 2 < b[1] or b[3] + 2 < box[1] for b in boxes
                ):
                    break
            else:
                ok = False
                break
            boxes.append(box)
        if not ok:
            continue
        # relations hold between every instance of the two groups
        for i, (_c, _col, _group, position) in enumerate(objects):
            if position:
                relation, other = position
                targets = [j for j, o in enumerate(objects) if o[2] == other]
                if not all(relation in relative_position(boxes[i], boxes[j]) for j in targets):
                    ok = False
        if ok:
            break
    else:
        raise ValueError(f"could not place the objects of {metadata.get('prompt', metadata)!r} on a {size} px canvas")
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for (cls, colour, _g, _p), box in zip(objects, boxes):
        draw_shape(draw, cls, box, COLOURS[colour])
    return np.asarray(image)
