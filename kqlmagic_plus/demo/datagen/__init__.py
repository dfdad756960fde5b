"""Synthetic Microsoft Sentinel tables, written in the Log Analytics continuous-export layout.

:func:`generate` writes SigninLogs, SecurityEvent, CommonSecurityLog and Syslog with the real column
names and KQL types (``data/la_table_schemas.json``), plausible values for a small organisation
(users, workstations, servers, Linux hosts, firewalls of four vendors), and planted attacks whose
ground truth goes to ``DIR/_truth.json``, all on the last day:

- a C2 beacon with its look-alikes: the worked example of the beacon hunt spec (hosts A-F), plus a
  slow beacon, a beacon on a busy host and a bursty browser (CommonSecurityLog);
- a password spray: one IP, failed sign-ins (ResultType 50126) across many accounts, two successes;
- a masquerading process, ``svch0st.exe``, in SecurityEvent 4688;
- a process executed once in the whole data set (SecurityEvent 4688).

Where records land: the export files a record under the 5-minute interval (or hour, in the older
layout) in which it reached the workspace, not under its TimeGenerated. Records here arrive 20 s
to a few minutes after TimeGenerated; ``late_fraction`` of them arrive 10 minutes to 36 hours late,
and one in a thousand carries a TimeGenerated up to 90 s ahead of its arrival (a source clock
running fast). That is what :mod:`kqlmagic_plus.lake` has to prune correctly.

Every random draw comes from a numpy generator seeded from ``seed`` and the (table, day, hour) of
its chunk, so the same arguments write the same bytes whatever the thread count. JSON lines are
rendered column-wise with Arrow string kernels: a column drawn from a vocabulary is escaped once
per distinct value, and columns drawn with the same index share one fragment.
"""

from kqlmagic_plus.demo.datagen.cli import (
    DatagenSummary,
    add_datagen_arguments,
    datagen_main,
    generate,
    run_datagen,
)
from kqlmagic_plus.demo.datagen.common import RESOURCE_GROUP, SUBSCRIPTION, TABLES, WORKSPACE
from kqlmagic_plus.demo.datagen.jsonlines import render_json_lines

__all__ = [
    "RESOURCE_GROUP",
    "SUBSCRIPTION",
    "TABLES",
    "WORKSPACE",
    "DatagenSummary",
    "add_datagen_arguments",
    "datagen_main",
    "generate",
    "render_json_lines",
    "run_datagen",
]
