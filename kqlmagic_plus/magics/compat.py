"""What a Kqlmagic notebook expects of the shell: comments above ``%%kql``, ``%config Kqlmagic.X``,
``--version``, ``--help TOPIC``, and one-time notes about options that have no effect here."""

from __future__ import annotations

from typing import Any

from traitlets import Any as AnyTrait
from traitlets.config import Configurable

#: Notes already shown in this session (each is said once).
_SAID: set[str] = set()


def note_once(text: str) -> None:
    """Print *text* the first time it comes up in the session."""
    if text not in _SAID:
        _SAID.add(text)
        print(text)


def note_ignored(options: tuple[str, ...]) -> None:
    """Name, once per option and session, the Kqlmagic options that were accepted without effect."""
    from kqlmagic_plus.kqlmagic_names import normalize

    new = [o for o in options if "option:" + normalize(o) not in _SAID]
    if new:
        _SAID.update("option:" + normalize(o) for o in new)
        print("Kqlmagic option(s) with no effect here: " + ", ".join(new)
              + " (display settings; see %kql --help kqlmagic)")


# -- Python comments above %%kql ---------------------------------------------------------------------

def drop_comments_before_cell_magic(lines: list[str]) -> list[str]:
    """An input transformer: a cell whose first code line is ``%%kql`` may start with ``#`` comment
    lines and blank lines (Kqlmagic accepts them); IPython needs the cell magic on the first line."""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if i and stripped.startswith("%%kql"):
            return lines[i:]
        return lines
    return lines


def register_transformer(ip: Any) -> None:
    cleanup = ip.input_transformers_cleanup
    if drop_comments_before_cell_magic not in cleanup:
        cleanup.append(drop_comments_before_cell_magic)


def unregister_transformer(ip: Any) -> None:
    cleanup = getattr(ip, "input_transformers_cleanup", [])
    if drop_comments_before_cell_magic in cleanup:
        cleanup.remove(drop_comments_before_cell_magic)


# -- %config Kqlmagic.X ------------------------------------------------------------------------------

#: Kqlmagic setting -> our KqlMagicPlus setting (same meaning).
CONFIG_MAPPED = {
    "display_limit": "display_limit",
    "show_query": "show_query",
    "timeout": "timeout",
    "debug": "debug",
}
#: Kqlmagic settings that change nothing about which rows come back: accepted, noted once.
CONFIG_IGNORED = (
    "short_errors", "feedback", "show_conn_info", "show_query_time", "show_query_link",
    "query_link_destination", "popup_window", "plotly_fs_includejs", "prettytable_style", "table_package",
    "plot_package", "validate_connection_string", "auto_popup_schema", "json_display", "schema_json_display",
    "palette_desaturation", "palette_name", "palette_colors", "palette_reverse", "popup_schema",
    "display_id", "popup_interaction", "plotly_layout", "auth_token_warnings", "check_magic_version",
    "show_what_new", "show_init_banner", "warn_missing_dependencies", "warn_missing_env_variables",
    "allow_single_line_cell", "allow_py_comments_before_cell", "enable_curly_brackets_params",
    "enable_suppress_result", "notebook_app", "sso_db_gc_interval", "enable_sso", "temp_folder_name",
    "device_code_login_notification", "device_code_notification_email", "try_azcli_login",
    "try_azcli_login_by_profile", "try_vscode_login", "code_auth_interactive_mode", "kernel_location",
    "kernel_id", "notebook_service_address", "temp_folder_location", "temp_files_server",
    "temp_files_server_address", "request_id_tag", "request_app_tag", "request_user_tag",
    "request_user_agent_tag", "add_kql_ref_to_help", "add_schema_to_help", "enable_add_items_to_help",
    "auth_use_http_client", "extras_require", "is_kernel_intializtion", "is_magic", "kqlmagic_kernel",
    "test_notebook_app", "try_azcli_login_subscription", "try_kqlmaic_sso",
)
#: Kqlmagic settings whose meaning is not reproduced -> what to do instead.
CONFIG_REFUSED = {
    "auto_limit": "add `| take N` to the query",
    "auto_dataframe": "call .to_dataframe() on the result",
    "columns_to_local_vars": "give -c2lv on the magic line (each column becomes a variable)",
    "dsn_filename": "write the connection string itself",
    "cache_folder_name": "set %config KqlMagicPlus.cache_dir = 'DIR'",
    "export_folder_name": "use %kql --cache export DIR",
    "use_cache": "use %config KqlMagicPlus.replay = 'DIR'",
    "cache": "use %config KqlMagicPlus.cache = '1h' (a TTL)",
    "dynamic_to_dataframe": "call .to_dataframe(): dynamic columns become Python objects",
    "last_raw_result_var": "use -o NAME; the last result is always in _kql_raw_result_",
    "cloud": "write cloud='public|usgov|china' in the connection string",
    "assign_var": "use -o NAME on the magic line",
    "cursor_var": "cursors are not supported; filter on ingestion_time() instead",
    "request_cache_max_age": "use --cache TTL (results reused for that long)",
}


class _KqlmagicSettings(Configurable):
    """Kqlmagic's settings object, so ``%config Kqlmagic.display_limit = 50`` keeps working: mapped
    settings are applied to :class:`~kqlmagic_plus.config.KqlMagicPlus` with a note; the others are
    named (no effect, or not supported with the replacement)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.observe(self._changed)

    def _changed(self, change: dict[str, Any]) -> None:
        name, value = change["name"], change["new"]
        if name in ("config", "parent", "log"):
            return
        from kqlmagic_plus.config import settings

        if name in CONFIG_MAPPED:
            ours = CONFIG_MAPPED[name]
            if ours == "timeout" and value is None:
                value = 0.0
            setattr(settings(), ours, value)
            note_once(f"Kqlmagic.{name} is applied as KqlMagicPlus.{ours} (use %config KqlMagicPlus.{ours} "
                      "from now on).")
        elif name in CONFIG_REFUSED:
            print(f"Kqlmagic.{name} is not supported here: {CONFIG_REFUSED[name]}")
        else:
            note_once(f"Kqlmagic.{name} has no effect here (a display or sign-in setting of Kqlmagic).")


#: Named ``Kqlmagic`` because ``%config`` finds a settings object by its class name; one trait per setting
#: in the tables above (built from them, so the tables stay the one list).
Kqlmagic = type("Kqlmagic", (_KqlmagicSettings,), {
    n: AnyTrait(None, allow_none=True).tag(config=True) for n in (*CONFIG_MAPPED, *CONFIG_IGNORED, *CONFIG_REFUSED)
})


def register_config(ip: Any) -> None:
    if not any(type(c).__name__ == "Kqlmagic" for c in ip.configurables):
        ip.configurables.append(Kqlmagic(parent=ip))


# -- Kqlmagic's --commands ----------------------------------------------------------------------------

#: Kqlmagic's ``%kql --<command>`` (normalized) -> what answers it here: "version", "help", "config", or a
#: one-line reason with the replacement. ``--conn`` and ``--cache`` are options of ours; ``--schema`` is #21's.
COMMANDS: dict[str, str] = {
    "version": "version", "banner": "version", "usage": "help", "help": "help", "faq": "help",
    "config": "config",
    "palette": "charts are plotly figures here: color them with result.show_chart().update_layout(colorway=[...])",
    "palettes": "charts are plotly figures here: color them with result.show_chart().update_layout(colorway=[...])",
    "bugreport": "not provided; include the output of %kql --version and the one-line error in your report",
    "cachecreate": "use --cache TTL (store and reuse results) and --cache export DIR",
    "cacheappend": "use --cache TTL (store and reuse results) and --cache export DIR",
    "cachecreateorappend": "use --cache TTL (store and reuse results) and --cache export DIR",
    "cacheremove": "use %kql --cache clear",
    "cachelist": "use %kql --cache list",
    "cachestop": "use --no-cache, or %config KqlMagicPlus.cache = 'off'",
    "usecache": "use --replay DIR (serve every query from a cache folder)",
    "usecachestop": "use --replay off",
    "clearssodb": "not needed: sign-in tokens are kept by azure-identity's own cache",
    "submit": "not needed: %%kql runs the cell",
    "py": "run Python in a Python cell", "pyro": "run Python in a Python cell", "pyrw": "run Python in a Python cell",
    "linemagic": "run the magic in its own cell", "cellmagic": "run the magic in its own cell",
    "activatekernel": "not provided: use a Python kernel with %load_ext kqlmagic_plus",
    "deactivatekernel": "not provided: use a Python kernel with %load_ext kqlmagic_plus",
}


def command(line: str, options_help: str) -> str | None:
    """The answer to a Kqlmagic ``--command`` line (``--version``, ``--help "topic"``, ``--palette``), or None
    when the line is no such command. Raises OptionError for a command whose meaning is not reproduced."""
    import shlex

    from kqlmagic_plus.errors import OptionError
    from kqlmagic_plus.kqlmagic_names import normalize

    words = line.strip().split(None, 1)
    if not words or not words[0].startswith("-") or words[0] in ("-h",):
        return help_topic("", options_help) if words[:1] == ["-h"] else None
    name = normalize(words[0])
    what = COMMANDS.get(name)
    if what is None or (name == "help" and not words[0].startswith(("--", "-help"))):
        return None
    if what == "version":
        from kqlmagic_plus import __version__

        return f"kqlmagic_plus {__version__}"
    if what == "help":
        try:
            args = shlex.split(words[1]) if len(words) > 1 else []
        except ValueError:
            args = words[1:]
        topic = next((a for a in args if not a.startswith("-")), "")  # -popup_window and the like: no effect
        return help_topic("kqlmagic" if name == "faq" else topic, options_help)
    if what == "config":
        if len(words) > 1:
            raise OptionError("--config NAME=VALUE: use %config KqlMagicPlus.NAME = VALUE")
        from kqlmagic_plus.config import settings

        cfg = settings()
        return "\n".join(f"KqlMagicPlus.{k} = {getattr(cfg, k)!r}" for k in sorted(cfg.traits(config=True)))
    raise OptionError(f"Kqlmagic's {words[0]} is not supported here: {what}")


# -- --help TOPIC ------------------------------------------------------------------------------------

def help_topic(topic: str, options_help: str) -> str:
    """Text for ``%kql --help TOPIC`` (Kqlmagic's topics, with this project's answers)."""
    from kqlmagic_plus import kqlmagic_names

    key = topic.strip().strip("'\"").lower()
    if key in ("", "help", "usage", "options"):
        return options_help
    if key in ("conn", "connection", "connections"):
        from kqlmagic_plus.connections import spec

        return spec.__doc__ or ""
    if key in ("kqlmagic", "migrate", "compat"):
        lines = ["Kqlmagic options here:"]
        lines += [f"  -{k:<26} -> --{v.replace('_', '-')}" for k, v in sorted(kqlmagic_names.MAPPED.items())]
        lines.append("Accepted with no effect: " + ", ".join("-" + k for k in sorted(kqlmagic_names.IGNORED)))
        lines += [f"  -{k:<26} not supported: {v}" for k, v in sorted(kqlmagic_names.REFUSED.items())]
        lines.append("Rewrite a notebook's loader lines: kqlmagic-plus migrate NOTEBOOK.ipynb [--in-place]")
        return "\n".join(lines)
    if key in ("params", "parameters", "python"):
        from kqlmagic_plus.language import params

        return params.__doc__ or ""
    return (f"no help topic {topic!r}; topics: options, conn, params, kqlmagic. For KQL itself see the "
            "KQL reference: https://learn.microsoft.com/kusto/query/")
