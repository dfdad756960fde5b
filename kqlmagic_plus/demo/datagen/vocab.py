"""The reference tables rows are drawn from: firewall vendors and actions, ports, Windows events, logon
types and processes, Entra ID apps, results and clients, and Syslog messages.

A weight of 0 keeps an entry out of background traffic: only the planted attacks use it.
"""

# vendor: DeviceVendor, DeviceProduct, DeviceVersion, DeviceName
_VENDORS = (("Palo Alto Networks", "PAN-OS", "10.2.7", "PA-3220-HQ"),
            ("Fortinet", "Fortigate", "7.2.5", "FGT-100F-BR1"),
            ("Check Point", "VPN-1 & FireWall-1", "R81.20", "cp-gw-dc01"),
            ("Cisco", "ASA", "9.16", "asa-dmz-01"))
_FORTINET = 1
# (vendor, allowed?): Activity, DeviceAction, DeviceEventClassID, LogSeverity
_ACTIONS = (("TRAFFIC", "allow", "end", "1"), ("TRAFFIC", "deny", "deny", "3"),
            ("traffic:forward accept", "accept", "0000000013", "3"),
            ("traffic:forward deny", "deny", "0000000013", "4"),
            ("Accept", "Accept", "Log", "1"), ("Drop", "Drop", "Log", "5"),
            ("Built outbound TCP connection", "Built", "302013", "6"),
            ("Deny tcp src outside", "Deny", "106023", "4"))
# DestinationPort, Protocol, ApplicationProtocol, weight (outbound), weight (east-west)
_PORTS = ((443, "TCP", "ssl", 70, 0), (80, "TCP", "web-browsing", 10, 0), (53, "UDP", "dns", 6, 10),
          (123, "UDP", "ntp", 2, 2), (8443, "TCP", "ssl", 2, 0), (22, "TCP", "ssh", 1, 4),
          (25, "TCP", "smtp", 1, 0), (993, "TCP", "imap", 1, 0), (445, "TCP", "ms-ds-smb", 0, 40),
          (389, "TCP", "ldap", 0, 15), (88, "TCP", "kerberos", 0, 15), (135, "TCP", "msrpc", 0, 8),
          (3389, "TCP", "ms-rdp", 0, 6))
_PORT_443, _PORT_445, _PORT_8443 = 0, 8, 4

# EventID, description, Task, weight, kind
_EVENTS = ((4624, "An account was successfully logged on.", 12544, 24, "logon"),
           (4625, "An account failed to log on.", 12544, 2, "fail"),
           (4634, "An account was logged off.", 12545, 14, "logoff"),
           (4648, "A logon was attempted using explicit credentials.", 12544, 2, "logon"),
           (4672, "Special privileges assigned to new logon.", 12548, 8, "priv"),
           (4688, "A new process has been created.", 13312, 26, "proc"),
           (4689, "A process has exited.", 13313, 14, "exit"),
           (4768, "A Kerberos authentication ticket (TGT) was requested.", 14339, 4, "krb"),
           (4769, "A Kerberos service ticket was requested.", 14337, 5, "krb"),
           (4776, "The computer attempted to validate the credentials for an account.", 14336, 1, "krb"))
_EV_4688 = 5
# LogonType, LogonTypeName, LogonProcessName, AuthenticationPackageName, weight, remote?
_LOGONS = ((2, "2 - Interactive", "User32 ", "Negotiate", 8, False), (3, "3 - Network", "NtLmSsp ", "NTLM", 30, True),
           (3, "3 - Network", "Kerberos", "Kerberos", 30, True), (5, "5 - Service", "Advapi  ", "Negotiate", 14, False),
           (7, "7 - Unlock", "User32 ", "Negotiate", 6, False),
           (10, "10 - RemoteInteractive", "User32 ", "Negotiate", 4, True),
           (11, "11 - CachedInteractive", "User32 ", "Negotiate", 4, False))
_S32 = "C:\\Windows\\System32\\"
_EXPLORER = "C:\\Windows\\explorer.exe"
# NewProcessName, ParentProcessName, CommandLine, weight, runs as SYSTEM?
_PROCESSES = (
    (_S32 + "svchost.exe", _S32 + "services.exe", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
     14, True),
    (_S32 + "conhost.exe", _S32 + "cmd.exe", "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1", 8, False),
    (_S32 + "RuntimeBroker.exe", _S32 + "svchost.exe", "C:\\Windows\\System32\\RuntimeBroker.exe -Embedding", 6,
     False),
    ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", _EXPLORER,
     '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe" --type=renderer --lang=en-US', 12, False),
    ("C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe", _EXPLORER,
     '"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe" --type=utility', 10, False),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE", _EXPLORER,
     '"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"', 3, False),
    ("C:\\Program Files\\WindowsApps\\MSTeams_24004.1307.2669.7070_x64__8wekyb3d8bbwe\\ms-teams.exe", _EXPLORER,
     '"ms-teams.exe" --system-initiated', 4, False),
    (_S32 + "WindowsPowerShell\\v1.0\\powershell.exe", _EXPLORER, "powershell.exe -NoProfile", 2, False),
    (_S32 + "cmd.exe", _EXPLORER, '"C:\\Windows\\system32\\cmd.exe"', 3, False),
    (_S32 + "SearchProtocolHost.exe", _S32 + "SearchIndexer.exe",
     '"C:\\Windows\\system32\\SearchProtocolHost.exe" Global\\UsGthrFltPipeMssGthrPipe1', 5, True),
    (_S32 + "backgroundTaskHost.exe", _S32 + "svchost.exe",
     '"C:\\Windows\\system32\\backgroundTaskHost.exe" -ServerName:BackgroundTaskHost.WebAccountProvider', 4,
     False),
    (_S32 + "taskhostw.exe", _S32 + "svchost.exe", "taskhostw.exe", 4, False),
    (_S32 + "dllhost.exe", _S32 + "svchost.exe",
     "C:\\Windows\\system32\\DllHost.exe /Processid:{AB8902B4-09CA-4BB6-B78D-A8F59079A8D5}", 5, True),
    (_S32 + "wbem\\WmiPrvSE.exe", _S32 + "svchost.exe", "C:\\Windows\\system32\\wbem\\wmiprvse.exe -Embedding",
     3, True),
    (_S32 + "gpupdate.exe", _S32 + "svchost.exe", "gpupdate.exe /target:computer", 1, True),
    (_S32 + "smartscreen.exe", _S32 + "svchost.exe", "C:\\Windows\\System32\\smartscreen.exe -Embedding", 2,
     False),
    # Planted only (weight 0): never drawn for background traffic.
    ("C:\\Users\\Public\\svch0st.exe", _S32 + "cmd.exe", "C:\\Users\\Public\\svch0st.exe -k netsvcs", 0, False),
    ("C:\\Windows\\Temp\\pd64.exe", _S32 + "cmd.exe",
     "C:\\Windows\\Temp\\pd64.exe -accepteula -ma lsass.exe C:\\Windows\\Temp\\lsass.dmp", 0, False),
)
_P_MASQ, _P_RARE = len(_PROCESSES) - 2, len(_PROCESSES) - 1

# AppDisplayName, AppId, ResourceDisplayName, weight
_APPS = (("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online", 25),
         ("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams Services", 25),
         ("Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online",
          15),
         ("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Graph", 15),
         ("Azure Portal", "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Windows Azure Service Management API", 5),
         ("Microsoft Authentication Broker", "29d9ed98-a469-4536-ade2-f981bc1d605e", "Microsoft Graph", 10),
         ("Azure Active Directory PowerShell", "1b730954-1685-4b74-9bfd-dac224a7b894", "Windows Azure Active Directory",
          1),
         ("Microsoft Office 365 Portal", "00000006-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online", 5))
_APP_PORTAL = 7
# ResultType, ResultDescription, Status failureReason, ConditionalAccessStatus, weight
_RESULTS = (("0", "", None, "success", 92),
            ("50126", "Invalid username or password or Invalid on-premise username or password.",
             "Invalid username or password or Invalid on-premise username or password.", "notApplied", 1.5),
            ("50074", "Strong Authentication is required.", "Strong Authentication is required.", "notApplied", 2),
            ("50140", "This error occurred due to 'Keep me signed in' interrupt when the user was signing in.",
             "This error occurred due to 'Keep me signed in' interrupt when the user was signing in.",
             "notApplied", 2),
            ("50076", "Due to a configuration change made by your administrator, or because you moved to a new "
             "location, you must use multi-factor authentication to access the resource.",
             "Due to a configuration change made by your administrator, or because you moved to a new location, "
             "you must use multi-factor authentication to access the resource.", "notApplied", 1),
            ("53003", "Access has been blocked by Conditional Access policies. The access policy does not allow "
             "token issuance.", "Access has been blocked by Conditional Access policies. The access policy does "
             "not allow token issuance.", "failure", 0.5),
            ("50125", "Sign-in was interrupted due to a password reset or password registration entry.",
             "Sign-in was interrupted due to a password reset or password registration entry.", "notApplied", 0.3))
_R_OK, _R_BADPW = 0, 1
# ClientAppUsed, UserAgent, operatingSystem, browser, IsInteractive, weight
_CLIENTS = (("Browser", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0", "Windows10", "Edge 120.0.0", True, 40),
            ("Mobile Apps and Desktop clients", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Chrome/114.0.5735.289 Electron/25.9.3 Safari/537.36 Teams/1.7.00.1960",
             "Windows10", "Rich Client 5.2.0", True, 35),
            ("Mobile Apps and Desktop clients", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) "
             "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "Ios 17.2", "Mobile Safari 17.2", True, 15),
            ("Exchange ActiveSync", "Outlook-iOS/723.4027091.prod.iphone (4.2405.0)", "Ios", "", False, 5),
            ("Browser", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Version/17.2 Safari/605.1.15", "MacOs", "Safari 17.2", True, 5),
            # Planted only: a password spraying script.
            ("Other clients", "python-requests/2.31.0", "", "Python Requests 2.31", True, 0))
_C_SCRIPT = len(_CLIENTS) - 1

# Facility, SeverityLevel, ProcessName, message template, weight
_SYSLOG = (("auth", "info", "sshd", "Accepted publickey for {user} from {iip} port {port} ssh2: ED25519 SHA256:"
            "p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM", 10),
           ("authpriv", "info", "sshd", "pam_unix(sshd:session): session opened for user {user}(uid={uid}) by "
            "(uid=0)", 10),
           ("auth", "info", "sshd", "Disconnected from user {user} {iip} port {port}", 8),
           ("auth", "notice", "sshd", "Invalid user {bad} from {eip} port {port}", 6),
           ("authpriv", "notice", "sudo", "{user} : TTY=pts/{n} ; PWD=/home/{user} ; USER=root ; "
            "COMMAND=/usr/bin/systemctl restart nginx", 4),
           ("cron", "info", "CRON", "(root) CMD (run-parts /etc/cron.hourly)", 14),
           ("daemon", "info", "systemd", "Started Session {n} of User {user}.", 12),
           ("daemon", "info", "systemd", "Starting Daily apt download activities...", 4),
           ("kern", "warning", "kernel", "[UFW BLOCK] IN=eth0 OUT= MAC= SRC={eip} DST={hip} LEN=60 TOS=0x00 "
            "PREC=0x00 TTL=50 ID=0 DF PROTO=TCP SPT={port} DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0", 16),
           ("mail", "info", "postfix/smtpd", "connect from unknown[{eip}]", 6),
           ("syslog", "info", "rsyslogd", '[origin software="rsyslogd" swVersion="8.2112.0" x-pid="{n}" '
            'x-info="https://www.rsyslog.com"] rsyslogd was HUPed', 2),
           ("daemon", "err", "containerd", 'level=error msg="failed to reload cni configuration" '
            'error="cni config load failed: no network config found in /etc/cni/net.d"', 3),
           ("local0", "debug", "haproxy", "{iip}:{port} [frontend~] backend/web-0{n} 0/0/1/12/13 200 1432", 5))
_BAD_USERS = ("admin", "test", "oracle", "ubuntu", "pi", "guest", "postgres", "ftpuser", "git", "user")
