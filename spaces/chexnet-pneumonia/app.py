"""A Hugging Face Space written by `medhub spaces build` (see README.md): medhub.spaces."""

from medhub.spaces import launch, space_demo

demo = space_demo("chexnet-pneumonia", __file__, default_org="medhub")

if __name__ == "__main__":
    launch(demo)
