"""A user reward in its own file: left-right mirror symmetry of each image, in [0, 1].

The trainer calls it with a batch of images ([B, 3, H, W] floats in [0, 1]), the prompts and their
metadata, and wants one score per image plus a dict of extra numbers to log.
"""


def symmetry(images, prompts, metadata):
    images = images.detach().float().cpu()
    mismatch = (images - images.flip(dims=[3])).abs().mean(dim=(1, 2, 3))
    return 1.0 - mismatch, {}


symmetry.bounds = (0.0, 1.0)  # a bounded reward: the trackers use a Beta model of it
