"""Hugging Face Space: DeepMedic (BraTS). The interface is built (and tested) in medhub.spaces."""

from medhub.spaces import build_space, launch

demo = build_space("deepmedic-brats")

if __name__ == "__main__":
    launch(demo)
