"""Hugging Face Space: Attention U-Net (BraTS). The interface is built (and tested) in medhub.spaces."""

from medhub.spaces import build_space, launch

demo = build_space("attention-unet-brats")

if __name__ == "__main__":
    launch(demo)
