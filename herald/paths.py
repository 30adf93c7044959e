"""Where the project's own files are (the repository is installed in editable mode)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
WORKSPACE_YAML = PROJECT_ROOT / "workspace.yaml"
DEPLOY_DIR = PROJECT_ROOT / "deploy"
