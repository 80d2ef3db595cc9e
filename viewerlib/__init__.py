from viewerlib.pipeline.instance import read_instance  # noqa: E402
from viewerlib.volume.volume import read_series  # noqa: E402
