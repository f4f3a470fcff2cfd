"""A throw-away OpenLDAP server: ``slapd`` on a free port with a fresh mdb database.

Used by the LDAP connector's tests (tests/ldapserver.py) and by ``manage.py bench_connectors``.
Nothing is installed or configured system-wide: the configuration, the database and the pid
file live in a temporary directory removed by ``stop()``.

    server = LdapServer().start()     # base dc=example,dc=org, ou=people, ou=groups
    server.add_people(["ann", "bob"])  # uid=ann,ou=people,... with mail ann@example.org
    server.add_group("Finance", members=["ann"])
    server.stop_process(); server.start_process()   # the same database, a restart
    server.stop()
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SLAPD_CANDIDATES = ("/usr/sbin/slapd", "slapd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


def slapd_path():
    """The slapd binary, or None when OpenLDAP is not installed."""
    for candidate in SLAPD_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LdapServer:
    """One slapd process with its own database; root bind as ``cn=admin,<base>``."""

    def __init__(self, *, base_dn="dc=example,dc=org", password="secret", mail_domain=None):
        self.base_dn = base_dn
        self.admin_dn = f"cn=admin,{base_dn}"
        self.password = password
        self.people_dn = f"ou=people,{base_dn}"
        self.groups_dn = f"ou=groups,{base_dn}"
        self.mail_domain = mail_domain or ".".join(
            part.split("=", 1)[1] for part in base_dn.split(",")
        )
        self.port = None
        self.directory = None
        self.process = None
        self.slapd = slapd_path()

    # --- The process ------------------------------------------------------------------

    @property
    def url(self):
        return f"ldap://127.0.0.1:{self.port}"

    def start(self, preload=""):
        """Write the configuration, load the base entries (and ``preload``, LDIF made with
        ``people_ldif`` / ``group_ldif``: slapadd loads 50,000 entries in seconds, where
        adds over the protocol take minutes) and start slapd."""
        if self.slapd is None:
            raise RuntimeError("OpenLDAP's slapd is not installed (apt-get install slapd).")
        self.directory = Path(tempfile.mkdtemp(prefix="slapd-"))
        (self.directory / "db").mkdir()
        self.port = free_port()
        self._write_config()
        self._slapadd(self._base_ldif() + ("\n" + preload if preload else ""))
        self.start_process()
        return self

    def people_ldif(self, uids):
        return "".join(
            f"dn: {self.person_dn(uid)}\nobjectClass: inetOrgPerson\ncn: {uid}\nsn: {uid}\n"
            f"uid: {uid}\nmail: {self.mail(uid)}\n\n"
            for uid in uids
        )

    def group_ldif(self, name, members=()):
        dn = self.group_dn(name)
        values = [self.person_dn(uid) for uid in members] or [dn]  # groupOfNames needs one
        lines = "".join(f"member: {value}\n" for value in values)
        return f"dn: {dn}\nobjectClass: groupOfNames\ncn: {name}\n{lines}\n"

    def start_process(self, timeout=15):
        """Start slapd on the database (again, after ``stop_process``); waits until it binds."""
        self.process = subprocess.Popen(
            [
                self.slapd,
                "-f",
                str(self.directory / "slapd.conf"),
                "-h",
                f"ldap://127.0.0.1:{self.port}/",
                "-d",
                "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"slapd exited with {self.process.returncode}: "
                    + self.process.stderr.read().decode(errors="replace")[-2000:]
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop_process()
        raise RuntimeError(f"slapd did not listen on port {self.port} within {timeout} s")

    def stop_process(self):
        """Stop slapd, keeping its database (``start_process`` starts it again)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def stop(self):
        """Stop slapd and remove its configuration and database."""
        self.stop_process()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _write_config(self):
        schemas = "\n".join(f"include {SCHEMA_DIR / name}.schema" for name in SCHEMAS)
        (self.directory / "slapd.conf").write_text(
            f"""{schemas}
pidfile {self.directory / "slapd.pid"}
argsfile {self.directory / "slapd.args"}
modulepath {MODULE_DIR}
moduleload back_mdb
sizelimit unlimited
timelimit unlimited

database mdb
maxsize 1073741824
suffix "{self.base_dn}"
rootdn "{self.admin_dn}"
rootpw {self.password}
directory {self.directory / "db"}
index objectClass eq
index uid,mail,cn eq,sub
index member,uniqueMember,owner eq
sortvals member uniqueMember owner
access to * by * read
"""
        )

    def _base_ldif(self):
        top = self.base_dn.split(",", 1)[0].split("=", 1)[1]
        return (
            f"dn: {self.base_dn}\nobjectClass: top\nobjectClass: dcObject\n"
            f"objectClass: organization\no: {top}\ndc: {top}\n\n"
            f"dn: {self.people_dn}\nobjectClass: organizationalUnit\nou: people\n\n"
            f"dn: {self.groups_dn}\nobjectClass: organizationalUnit\nou: groups\n"
        )

    def _slapadd(self, ldif):
        """Load entries straight into the (stopped) database."""
        subprocess.run(
            [self.slapd, "-T", "add", "-f", str(self.directory / "slapd.conf"), "-q"],
            input=ldif.encode(),
            check=True,
            capture_output=True,
        )

    # --- Entries ------------------------------------------------------------------------

    def connection(self):
        """An ldap3 connection bound as the administrator (for tests changing entries by hand)."""
        import ldap3

        server = ldap3.Server("127.0.0.1", port=self.port, get_info=ldap3.NONE)
        return ldap3.Connection(
            server, self.admin_dn, self.password, auto_bind=True, auto_range=True
        )

    def person_dn(self, uid):
        return f"uid={uid},{self.people_dn}"

    def group_dn(self, name):
        return f"cn={name},{self.groups_dn}"

    def mail(self, uid):
        return f"{uid}@{self.mail_domain}"

    def add_people(self, uids, *, batch=500):
        """Add inetOrgPerson entries uid=<uid> with mail <uid>@<domain>."""
        conn = self.connection()
        try:
            for uid in uids:
                conn.add(
                    self.person_dn(uid),
                    ["inetOrgPerson"],
                    {"cn": uid, "sn": uid, "uid": uid, "mail": self.mail(uid)},
                )
                if conn.result["result"] not in (0, 68):  # 68: already exists
                    raise RuntimeError(f"adding {uid}: {conn.result}")
        finally:
            conn.unbind()

    def add_group(self, name, *, members=(), owners=(), description="", object_class=None):
        """A groupOfNames (or groupOfUniqueNames) named ``name`` with these uids as members.

        groupOfNames needs one member: an empty group holds the group's own DN, as usual.
        """
        object_class = object_class or "groupOfNames"
        attribute = "uniqueMember" if object_class == "groupOfUniqueNames" else "member"
        dn = self.group_dn(name)
        values = [self.person_dn(uid) for uid in members] or [dn]
        attributes = {"cn": name, attribute: values}
        if owners:
            attributes["owner"] = [self.person_dn(uid) for uid in owners]
        if description:
            attributes["description"] = description
        conn = self.connection()
        try:
            conn.add(dn, [object_class], attributes)
            if conn.result["result"] != 0:
                raise RuntimeError(f"adding group {name}: {conn.result}")
        finally:
            conn.unbind()
        return dn

    def members(self, name, attribute="member"):
        """The uids (or DNs, for entries outside ou=people) in the group's member attribute."""
        conn = self.connection()
        try:
            conn.search(self.group_dn(name), "(objectClass=*)", "BASE", attributes=[attribute])
            values = conn.entries[0][attribute].values if conn.entries else []
        finally:
            conn.unbind()
        suffix = f",{self.people_dn}".lower()
        return {
            v[4 : -len(suffix)] if v.lower().endswith(suffix) and v.startswith("uid=") else v
            for v in values
            if v.lower() != self.group_dn(name).lower()
        }


def ldap_env_password(server, name="LDAP_TEST_PASSWORD"):
    """Put the server's password in an environment variable; returns its name (a secret
    reference)."""
    os.environ[name] = server.password
    return name
