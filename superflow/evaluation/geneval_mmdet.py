"""GenEval's detector backend: mmdet Mask2Former (Swin-S, COCO) plus CLIP ViT-L/14 colour decisions.

This reproduces what GenEval's ``evaluation/evaluate_images.py`` feeds its rules: per COCO class,
the boxes and masks Mask2Former returns, and for a colour requirement a zero-shot CLIP
classification of each object's crop, with the object pasted by its mask onto a grey (#999)
canvas, over GenEval's ten colours and three templates. The rules themselves are
:mod:`superflow.evaluation.geneval_rules`, shared with the mini world's detector.

mmdet 2.x needs an old torch and mmcv-full, so it lives in its own conda env (``envs/geneval.yaml``);
the trainer reaches it through the ``served`` reward (:mod:`superflow.rewards.server`). Nothing is
downloaded: the checkpoint and CLIP weights come from local folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from superflow.evaluation.geneval_rules import Detection
from superflow.models.weights import WeightsNotFoundError, WeightSpec, resolve_weights

MASK2FORMER = "mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco"
MASK2FORMER_CONFIG = f"mask2former/{MASK2FORMER}.py"  # mmdet 2.x, as GenEval uses
MASK2FORMER_CONFIG_V3 = "mask2former/mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py"  # the same model in mmdet 3.x
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
COLOR_TEMPLATES = ("a photo of a {c} {cls}", "a photo of a {c}-colored {cls}", "a photo of a {c} object")
CROP_BACKGROUND = (153, 153, 153)  # GenEval's bgcolor "#999"
CLIP_WEIGHT_FILES = ("open_clip_pytorch_model.bin", "open_clip_model.safetensors", "ViT-L-14.pt")
ENV_HINT = (
    "mmdet's Mask2Former needs its own environment: `conda env create -f envs/geneval.yaml`, then give the "
    "reward `name: served` with `kwargs: {reward: geneval, python: <that env>/bin/python}`"
)

DETECTOR_WEIGHTS = WeightSpec(
    component="GenEval Mask2Former checkpoint",
    config_key="reward.kwargs.detector_path",
    env_var="SUPERFLOW_GENEVAL_DETECTOR_PATH",
    repo_id=None,
    required_files=(f"{MASK2FORMER}.pth",),
    how_to_obtain=(
        "On a machine with internet access run GenEval's evaluation/download_models.sh DIR (it fetches "
        f"{MASK2FORMER}_20220504_001756-743b7d99.pth from download.openmmlab.com and saves it as {MASK2FORMER}.pth), "
        "copy DIR here and set reward.kwargs.detector_path (or SUPERFLOW_GENEVAL_DETECTOR_PATH)."
    ),
)
CLIP_WEIGHTS = WeightSpec(
    component="GenEval colour classifier (open_clip ViT-L-14, OpenAI weights)",
    config_key="reward.kwargs.clip_path",
    env_var="SUPERFLOW_GENEVAL_CLIP_PATH",
    repo_id="timm/vit_large_patch14_clip_224.openai",
    required_files=(),
    how_to_obtain=(
        "On a machine with internet access run `huggingface-cli download timm/vit_large_patch14_clip_224.openai "
        "--local-dir DIR`, copy DIR here and set reward.kwargs.clip_path (or SUPERFLOW_GENEVAL_CLIP_PATH)."
    ),
)


def coco_classes() -> list[str]:
    """GenEval's 80 object names, in Mask2Former's COCO class order."""
    return (Path(__file__).parents[1] / "data" / "geneval" / "object_names.txt").read_text().split("\n")[:80]


def _clip_weight_file(folder: Path) -> Path:
    for name in CLIP_WEIGHT_FILES:
        if (folder / name).exists():
            return folder / name
    raise WeightsNotFoundError(
        f"{CLIP_WEIGHTS.component}: {folder} has none of {', '.join(CLIP_WEIGHT_FILES)}. {CLIP_WEIGHTS.how_to_obtain}"
    )


def detections_from_mmdet(
    result, classes: Sequence[str], image_shape: tuple[int, int]
) -> tuple[list[Detection], list]:
    """mmdet 2.x ``inference_detector`` output -> Detections and their masks (same order).

    ``result`` is ``(bbox_per_class, segm_per_class)`` or ``bbox_per_class``: per class an [N, 5]
    array of x0, y0, x1, y1, score, and a list of N boolean masks. mmdet 3.x's DetDataSample is
    converted to the same layout.
    """
    if hasattr(result, "pred_instances"):  # mmdet 3.x
        inst = result.pred_instances
        boxes = inst.bboxes.cpu().numpy()
        scores = inst.scores.cpu().numpy()
        labels = inst.labels.cpu().numpy()
        masks = inst.masks.cpu().numpy() if hasattr(inst, "masks") else [None] * len(labels)
        per_class_boxes = [
            np.concatenate([boxes[labels == k], scores[labels == k, None]], axis=1) for k in range(len(classes))
        ]
        per_class_masks = [[m for m, lab in zip(masks, labels) if lab == k] for k in range(len(classes))]
    else:
        per_class_boxes = result[0] if isinstance(result, tuple) else result
        per_class_masks = (
            result[1] if isinstance(result, tuple) and len(result) > 1 else [[None] * len(b) for b in per_class_boxes]
        )
    if len(per_class_boxes) != len(classes):
        raise ValueError(f"the detector returned {len(per_class_boxes)} classes, GenEval expects {len(classes)}")
    detections, masks = [], []
    for cls, boxes, cls_masks in zip(classes, per_class_boxes, per_class_masks):
        for box, mask in zip(np.asarray(boxes).reshape(-1, 5), cls_masks):
            if mask is not None and tuple(np.shape(mask)) != tuple(image_shape):
                raise ValueError(f"mask of shape {np.shape(mask)} for an image of {image_shape}")
            detections.append(Detection(cls=cls, box=tuple(float(v) for v in box[:4]), score=float(box[4])))
            masks.append(mask)
    return detections, masks


def crop_for_colour(image: np.ndarray, box: Sequence[float], mask: np.ndarray | None):
    """GenEval's crop: the object (by its mask) on a #999 canvas, cut to its box, as a PIL image."""
    from PIL import Image

    pil = Image.fromarray(image)
    if mask is not None:
        blank = Image.new("RGB", pil.size, CROP_BACKGROUND)
        pil = Image.composite(pil, blank, Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255))
    return pil.crop(tuple(box[:4]))


class ColourClassifier:
    """Zero-shot CLIP over GenEval's ten colours, templates averaged as clip_benchmark does."""

    def __init__(self, clip_path: str | None, device: str):
        import open_clip
        import torch

        folder = resolve_weights(CLIP_WEIGHTS, clip_path)
        model, _, self.transform = open_clip.create_model_and_transforms(
            "ViT-L-14", pretrained=str(_clip_weight_file(folder)), device=device
        )
        self.model, self.tokenizer, self.device, self.torch = (
            model.eval(),
            open_clip.get_tokenizer("ViT-L-14"),
            device,
            torch,
        )
        self._classifiers: dict[str, object] = {}

    def _classifier(self, cls: str):
        torch = self.torch
        if cls not in self._classifiers:
            with torch.no_grad():
                weights = []
                for colour in COLORS:
                    tokens = self.tokenizer([t.format(c=colour, cls=cls) for t in COLOR_TEMPLATES]).to(self.device)
                    emb = self.model.encode_text(tokens)
                    emb = emb / emb.norm(dim=-1, keepdim=True)
                    mean = emb.mean(dim=0)
                    weights.append(mean / mean.norm())
                self._classifiers[cls] = torch.stack(weights, dim=1)
        return self._classifiers[cls]

    def __call__(self, crops: list, cls: str) -> list[dict[str, float]]:
        torch = self.torch
        with torch.no_grad():
            batch = torch.stack([self.transform(c) for c in crops]).to(self.device)
            feats = self.model.encode_image(batch)
            logits = 100.0 * (feats / feats.norm(dim=-1, keepdim=True)) @ self._classifier(cls)
        return [dict(zip(COLORS, row.tolist())) for row in logits.float().cpu()]


class Mask2FormerDetector:
    """Detections for GenEval's rules from Mask2Former, colours decided by CLIP where asked."""

    def __init__(
        self,
        detector_path: str | None = None,
        config_path: str | None = None,
        clip_path: str | None = None,
        device: str = "cuda",
        colours=None,
    ):
        """``colours`` replaces the CLIP colour classifier (a callable ``(crops, cls) -> [scores]``)."""
        try:
            import mmdet
            from mmdet.apis import inference_detector, init_detector
        except ImportError as err:
            raise ImportError(f"the GenEval 'mmdet' backend needs mmdet and mmcv-full: {ENV_HINT}") from err
        if colours is None:
            try:
                import open_clip  # noqa: F401
            except (ImportError, RuntimeError) as err:  # RuntimeError: a torchvision built for another torch
                raise ImportError(
                    f"the GenEval 'mmdet' backend needs open_clip_torch for colours: {ENV_HINT} ({err})"
                ) from err
        checkpoint = resolve_weights(DETECTOR_WEIGHTS, detector_path) / f"{MASK2FORMER}.pth"
        config = Path(config_path) if config_path else mmdet_config_path(Path(mmdet.__file__).parent)
        self._inference = inference_detector
        self.model = init_detector(str(config), str(checkpoint), device=device)
        self.classes = coco_classes()
        self.colours = colours if colours is not None else ColourClassifier(clip_path, device)

    def detect(self, image: np.ndarray, metadata: dict) -> list[Detection]:
        detections, masks = detections_from_mmdet(
            self._inference(self.model, image[:, :, ::-1]), self.classes, image.shape[:2]
        )
        return assign_colours(image, detections, masks, metadata, self.colours)


def assign_colours(image, detections: list[Detection], masks: list, metadata: dict, classify) -> list[Detection]:
    """CLIP colour scores for the most confident ``count`` objects of each class with a colour clause."""
    from superflow.evaluation.geneval_rules import keep_detections

    kept = keep_detections(detections, metadata.get("tag", ""))
    mask_of = {id(d): m for d, m in zip(detections, masks)}
    for req in metadata.get("include", []):
        if "color" not in req:
            continue
        found = kept.get(req["class"], [])[: int(req.get("count", 1))]
        if found:
            crops = [crop_for_colour(image, d.box, mask_of[id(d)]) for d in found]
            for det, scores in zip(found, classify(crops, req["class"])):
                det.color_scores = scores
    return detections


def mmdet_config_path(mmdet_dir: Path) -> Path:
    """The Mask2Former config inside an installed mmdet (wheel: ``.mim/configs``; source: ``../configs``)."""
    candidates = [
        root / name
        for root in (mmdet_dir / ".mim" / "configs", mmdet_dir.parent / "configs")
        for name in (MASK2FORMER_CONFIG, MASK2FORMER_CONFIG_V3)
    ]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"mmdet at {mmdet_dir} has no {MASK2FORMER_CONFIG}; "
        "give reward.kwargs.config_path (GenEval uses mmdet 2.x's config)"
    )
