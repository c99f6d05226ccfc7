"""Where a policy runs: in process (transformers_backend) or on a model server (openai_backend)."""

from __future__ import annotations


def policy_backend(name: str, pool):
    """The backend for a policy name: `openai:MODEL@URL` is a model server (built once per pool),
    anything else a model loaded in process by the pool."""
    from .openai_backend import OpenAIBackend, is_server_name

    if is_server_name(name):
        return pool.get_built("server:" + name, lambda: OpenAIBackend.from_name(name))
    from .transformers_backend import TransformersBackend

    return TransformersBackend.from_loaded(pool.get(name))
