"""The tables of `netshrink reproduce transformer` (placeholder until written)."""


def write(run, *args) -> str:
    return "# transformer\n\n(tables not written yet)\n"
