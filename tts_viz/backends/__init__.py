"""Where a policy runs: in process (transformers_backend) or on a model server (openai_backend)."""

from __future__ import annotations


def policy_backend(name: str, pool, quant: str | None = None):
    """The backend for a policy name: `openai:MODEL@URL` is a model server (built once per pool),
    anything else a model loaded in process by the pool (quant "nf4": bitsandbytes 4-bit)."""
    from .openai_backend import OpenAIBackend, is_server_name

    if is_server_name(name):
        if quant not in (None, "none"):
            from ..models import ModelError

            raise ModelError("The precision of a served model is the server's to choose (vLLM: --quantization "
                             "bitsandbytes); --quant applies to models loaded here.")
        return pool.get_built("server:" + name, lambda: OpenAIBackend.from_name(name))
    from .transformers_backend import TransformersBackend

    return TransformersBackend.from_loaded(pool.get(name, quant=quant))
