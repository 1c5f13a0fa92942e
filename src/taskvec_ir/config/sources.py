"""The checkpoints a model config names, by role, and the config key of each role.

Roles: ``ir`` (ΘT), ``base`` (Θ0) and ``domain`` (ΘD) of the task vector named ``domain``, then
``<name>.base`` and ``<name>.domain`` for each of ``model.extra_domains``. A source is a model source string
(``checkpoints.resolve_model_source``) or an ``AdaptConfig`` (a checkpoint adapted to a corpus).
"""

from __future__ import annotations

from taskvec_ir.config.model import PRIMARY, AdaptConfig, ModelConfig

Source = str | AdaptConfig
IR, BASE, DOMAIN = "ir", "base", "domain"  # the roles of ΘT, and of Θ0 and ΘD of the task vector named PRIMARY


def vector_roles(vector: str) -> tuple[str, str]:
    """The (base, domain) roles of a task vector."""
    prefix = "" if vector == PRIMARY else f"{vector}."
    return f"{prefix}{BASE}", f"{prefix}{DOMAIN}"


def model_sources(model: ModelConfig) -> dict[str, Source]:
    """Every checkpoint of the model config by role: ``ir``, then each vector's base and domain."""
    sources: dict[str, Source] = {IR: model.ir}
    for vector, (base, domain) in model.vectors().items():
        base_role, domain_role = vector_roles(vector)
        sources[base_role], sources[domain_role] = base, domain
    return sources


def config_key(role: str) -> str:
    """The config key of a role: ``model.domain``, ``model.extra_domains.<name>.domain``."""
    return f"model.{role}" if "." not in role else f"model.extra_domains.{role}"
