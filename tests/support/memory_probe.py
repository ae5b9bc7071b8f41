"""Child process for tests/transforms/test_memory_bounded.py: fetches and
parses URLs with its address space capped a fixed headroom above what it
uses after start-up.

    python -m tests.support.memory_probe HEADROOM_MB URL...

Prints one JSON object: the error (or story count) per URL, whether the cap
really stops a larger allocation, and the peak resident memory. A bomb that
got past the fetch or parse limits dies here with MemoryError.
"""
import json
import resource
import sys

from tests.support.faultserver import FAULT_SETTINGS
from transforms.fetch import fetch_feed
from transforms.parse import parse_fetch
from transforms.records import FeedSource

MIB = 1 << 20


def address_space_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def main(argv):
    headroom, urls = int(argv[0]) * MIB, argv[1:]
    # Warm up first, so that lazy imports and thread start-up are not counted.
    parse_fetch(fetch_feed(FeedSource(urls[0]), FAULT_SETTINGS))
    limit = address_space_bytes() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        bytearray(2 * headroom)
        cap_works = False
    except MemoryError:
        cap_works = True
    outcomes = {}
    for url in urls:
        parsed = parse_fetch(fetch_feed(FeedSource(url), FAULT_SETTINGS))
        outcomes[url] = parsed.log.error or f"{len(parsed.stories)} stories"
        del parsed
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps({"outcomes": outcomes, "cap_works": cap_works, "peak_rss_mib": peak_mib}))


if __name__ == "__main__":
    main(sys.argv[1:])
