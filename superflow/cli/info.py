"""What is available here: ``list`` (presets, rewards), ``config-help`` (every key), ``doctor`` (readiness)."""

from __future__ import annotations


def _cmd_list(args) -> int:
    from superflow.config import preset_names
    from superflow.rewards import reward_names

    print("presets: " + ", ".join(preset_names()))
    print("rewards: " + ", ".join(reward_names()))
    return 0


def _cmd_config_help(args) -> int:
    from superflow.config import describe

    for key, text, default in describe():
        print(f"{key} (default {default!r})\n    {text}")
    return 0


def _cmd_doctor(args) -> int:
    """Report which models, rewards and evaluators this machine can run (offline, loads nothing)."""
    import json

    from superflow.config import load_config
    from superflow.doctor import as_json, format_checks, run_checks

    cfg = load_config(args.config, list(args.set or [])) if args.config else None
    checks = run_checks(cfg)
    print(json.dumps(as_json(checks), indent=1) if args.json else format_checks(checks))
    return 1 if args.strict and not all(c.ok for c in checks) else 0


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the top-level parser's subparsers)."""
    p = sub.add_parser("list", help="presets and registered rewards")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("config-help", help="every config key with its default and meaning")
    p.set_defaults(func=_cmd_config_help)

    p = sub.add_parser(
        "doctor", help="what this machine can run: packages and weights per model, reward and evaluator"
    )
    p.add_argument("--config", help="also check the weight paths this config names")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true")
    p.add_argument("--strict", action="store_true", help="exit 1 when anything is missing")
    p.set_defaults(func=_cmd_doctor)
