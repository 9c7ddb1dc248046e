"""Hugging Face Space: CheXNet (pneumonia). The interface is built (and tested) in medhub.spaces."""

from medhub.spaces import build_space, launch

demo = build_space("chexnet-pneumonia")

if __name__ == "__main__":
    launch(demo)
