"""Stand-in for `medhub.modeling_utils` in a Hub repo's remote code: the network side only.

transformers loads the repo itself (`PreTrainedModel.from_pretrained`), so the remote classes need
`MedModelBase` (paper, processor class, input checks, `infer`) and none of medhub's Hub and zoo loading.
"""

from ..modeling_base import MedModelBase, Paper

MedPreTrainedModel = MedModelBase

__all__ = ["MedPreTrainedModel", "Paper"]
