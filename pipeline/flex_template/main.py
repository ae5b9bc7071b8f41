"""Entry point of the Dataflow Flex Template.

The template launcher runs `python main.py --feeds=... --output=... --runner=
DataflowRunner --project=... ...` (the template parameters plus Beam's
options); this is `newswatch run` with those arguments. The launcher builds
the job, reads the state and submits the job; the job commits the state
itself (its last stage), so nothing here waits for it.

The workers run the same image as the launcher (pipeline/flex_template/
Dockerfile): the job names it with --sdk_container_image. A launch may pass
it as a parameter (sdk_container_image=IMAGE); otherwise the name the image
was built with (`--build-arg SDK_CONTAINER_IMAGE=IMAGE`, kept in the
environment variable below) is added here.
"""
import os
import sys
from typing import List, Mapping, Sequence

IMAGE_VARIABLE = "NEWSWATCH_SDK_CONTAINER_IMAGE"


def with_default_image(argv: Sequence[str], environ: Mapping[str, str]) -> List[str]:
    """argv, plus --sdk_container_image from the image's own name when the
    launch did not give one."""
    argv = list(argv)
    given = any(a == "--sdk_container_image" or a.startswith("--sdk_container_image=") for a in argv)
    image = environ.get(IMAGE_VARIABLE, "").strip()
    if image and not given:
        argv.append(f"--sdk_container_image={image}")
    return argv


if __name__ == "__main__":
    from pipeline.cli import main

    sys.exit(main(["run", *with_default_image(sys.argv[1:], os.environ)]))
