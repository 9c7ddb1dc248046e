"""Hugging Face Space: VGG-16 (pneumonia). The interface is built (and tested) in medhub.spaces."""

from medhub.spaces import build_space, launch

demo = build_space("vgg16-pneumonia")

if __name__ == "__main__":
    launch(demo)
