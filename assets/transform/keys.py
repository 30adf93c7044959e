"""The asset keys of dbt models, for the Python assets and jobs that read or feed them."""

import dagster as dg


def dbt_model_key(dbt_models: dg.AssetsDefinition, model: str) -> dg.AssetKey:
    """The key of dbt model ``model`` among ``dbt_models``; raises when the project has no such model."""
    # dagster-dbt takes seconds to import: imported when the definitions load, not when a module is imported
    from dagster_dbt import get_asset_key_for_model

    return get_asset_key_for_model([dbt_models], model)


# dbt models are grouped by their schema (HeraldDbtTranslator): the analytics marts' group
ANALYTICS_GROUP = "analytics"
