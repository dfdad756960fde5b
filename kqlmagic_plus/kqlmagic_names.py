"""Kqlmagic's option names and abbreviations, and what each becomes here.

Kqlmagic compares option names without case, ``-`` or ``_`` (``-show_query``, ``-showQuery`` and
``-sq`` are one option). Every name it knows is in one of three tables:

* :data:`MAPPED` - the option of ours with the same meaning (``-sq`` -> ``--show-query``).
* :data:`IGNORED` - display or session settings with no effect on which rows come back (palettes,
  popup windows, banners): accepted, and named once in a note so nobody wonders.
* :data:`REFUSED` - options whose meaning this does not reproduce: an error naming the replacement,
  because silently running without them would return something else than the notebook expects.

A name in none of the tables is an unknown option (the parser's error lists ours).
"""

from __future__ import annotations


def normalize(name: str) -> str:
    """An option name as Kqlmagic compares it: no leading dashes, lower case, without ``-`` and ``_``."""
    return name.lstrip("-").lower().replace("-", "").replace("_", "")


#: Kqlmagic name (normalized) -> our option's name (an ``Opt.name`` in :data:`kqlmagic_plus.options.KQL_OPTIONS`).
MAPPED: dict[str, str] = {
    "sq": "show_query", "showquery": "show_query",
    "dl": "display_limit", "displaylimit": "display_limit",
    "to": "timeout", "wait": "timeout", "timeout": "timeout",
    "query": "query",
    "conn": "conn",
    "paramsdict": "params",
    "queryproperties": "query_properties",
    "debug": "debug",
    "workspaces": "workspaces",
    "timespan": "timespan",
    # The variable that receives the result: ours is -o / --out.
    "var": "out", "lastrawresultvar": "out", "av": "out", "assignvar": "out",
}

#: Kqlmagic name (normalized) -> True when it takes a value (False: a flag). Accepted; no effect here.
IGNORED: dict[str, bool] = {
    "se": False, "shorterrors": False, "f": False, "feedback": False, "sci": True, "showconninfo": True,
    "sqt": False, "showquerytime": False, "sql": False, "showquerylink": False, "qld": True,
    "querylinkdestination": True, "esr": False, "enablesuppressresult": False, "pfi": False,
    "plotlyfsincludejs": False, "pw": False, "popupwindow": False, "ptst": True, "prettytablestyle": True,
    "tp": True, "tablepackage": True, "pp": True, "plotpackage": True, "vc": False,
    "validateconnectionstring": False, "aps": False, "autopopupschema": False, "jd": True, "jsondisplay": True,
    "sjd": True, "schemajsondisplay": True, "pd": True, "palettedesaturation": True, "pn": True, "palettename": True,
    "pc": True, "palettecolors": True, "pr": False, "palettereverse": False, "ps": False, "popupschema": False,
    "did": False, "displayid": False, "pi": True, "popupinteraction": True, "pl": True, "plotlylayout": True,
    "atw": False, "authtokenwarnings": False, "nop": False, "addkqlreftohelp": False, "addschematohelp": False,
    "enableadditemstohelp": False, "notebookapp": True, "checkmagicversion": False, "showwhatnew": False,
    "showinitbanner": False, "warnmissingdependencies": False, "warnmissingenvvariables": False,
    "allowsinglelinecell": False, "allowpycommentsbeforecell": False, "kqlmagickernel": False,
    "extrasrequire": True, "enablesso": False, "ssodbgcinterval": True, "authusehttpclient": False,
    "idtag": True, "requestidtag": True, "apptag": True, "requestapptag": True, "usertag": True,
    "requestusertag": True, "uatag": True, "useragenttag": True, "requestuatag": True,
    "requestuseragenttag": True, "dcln": True, "devicecodeloginnotification": True, "dcne": True,
    "devicecodenotificationemail": True, "tempfilesserver": True, "tempfilesserveraddress": True,
    "kernellocation": True, "kernelid": True, "notebookserviceaddress": True, "tempfolderlocation": True,
    "tempfoldername": True, "ismagic": False, "iskernelintializtion": False,
    "testnotebookapp": True, "caim": True, "codeauthinteractivemode": True,
    "ecbp": False, "enablecurlybracketsparams": False, "displayhandlers": True,
    # The first sign-in method to try: the connection string's own sign-in decides here.
    "tryazclilogin": False, "tryazcliloginbyprofile": False, "tryvscodelogin": False,
    "tryazcliloginsubscription": True,
}

#: Kqlmagic name (normalized) -> what to write instead.
REFUSED: dict[str, str] = {
    "ad": "the result is a Result; call .to_dataframe() on it (or use .df)",
    "autodataframe": "the result is a Result; call .to_dataframe() on it (or use .df)",
    "al": "add `| take N` to the query (an automatic limit would hide rows silently)",
    "autolimit": "add `| take N` to the query (an automatic limit would hide rows silently)",
    "df": "write the connection string itself (DSN files are not read)",
    "dsnfilename": "write the connection string itself (DSN files are not read)",
    "saveas": "call .to_csv(PATH) on the result",
    "saveto": "call .to_csv(PATH) on the result",
    "dtd": "call .to_dataframe(): dynamic columns become Python objects",
    "dynamictodataframe": "call .to_dataframe(): dynamic columns become Python objects",
    "usecache": "use --replay DIR (serve every query from a cache folder) or --cache TTL",
    "cachefoldername": "set %config KqlMagicPlus.cache_dir = 'DIR'",
    "exportfoldername": "use --cache export DIR",
    "cv": "cursors are not supported; filter on ingestion_time() instead",
    "cursorvar": "cursors are not supported; filter on ingestion_time() instead",
    "maxage": "use --cache TTL (results reused for that long)",
    "requestcachemaxage": "use --cache TTL (results reused for that long)",
    "trytoken": "sign in through the connection string (code, azcli, msi, clientid+clientsecret)",
    "trymsi": "write ;msi in the connection string",
    "cloud": "write cloud='public|usgov|china' in the connection string",
    "dsn": "write the connection string itself (DSN files are not read)",
}


def lookup(name: str) -> tuple[str, str | bool] | None:
    """``("mapped", our_name)``, ``("ignored", takes_value)``, ``("refused", replacement)`` or None."""
    key = normalize(name)
    if key in MAPPED:
        return "mapped", MAPPED[key]
    if key in IGNORED:
        return "ignored", IGNORED[key]
    if key in REFUSED:
        return "refused", REFUSED[key]
    return None
