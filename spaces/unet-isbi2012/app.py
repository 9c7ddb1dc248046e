"""Hugging Face Space: U-Net (ISBI 2012 EM). The interface is built (and tested) in medhub.spaces."""

from medhub.spaces import build_space, launch

demo = build_space("unet-isbi2012")

if __name__ == "__main__":
    launch(demo)
