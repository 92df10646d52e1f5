package nspawn

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The directory every image carries (ldapProvisionScript): a user and a
// group that only LDAP knows, the group also listing the local user dave.
const (
	ldapUser  = "erin"
	ldapUID   = 2001
	ldapGroup = "labnet"
	ldapGID   = 3001
	ldapBase  = "dc=netns,dc=test"
)

// ldapProvisionScript runs chrooted at image build, after the test users
// exist. slapd serves ldapBase from 127.0.0.1, nslcd reads it for
// libnss-ldapd; neither starts at boot and nsswitch.conf does not name ldap
// until a test calls enableLDAP, so the other tests see the image as before.
// policy-rc.d keeps the packages' scripts from starting daemons in the
// chroot.
var ldapProvisionScript = fmt.Sprintf(`
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
debconf-set-selections <<'SEL'
slapd slapd/no_configuration boolean false
slapd slapd/domain string netns.test
slapd shared/organization string netns-session tests
slapd slapd/password1 password test
slapd slapd/password2 password test
slapd slapd/move_old_database boolean true
SEL
DEBIAN_FRONTEND=noninteractive dpkg-reconfigure -f noninteractive slapd
slapadd -b %[1]s <<'LDIF'
dn: ou=people,%[1]s
objectClass: organizationalUnit
ou: people

dn: ou=groups,%[1]s
objectClass: organizationalUnit
ou: groups

dn: uid=%[2]s,ou=people,%[1]s
objectClass: account
objectClass: posixAccount
objectClass: shadowAccount
uid: %[2]s
cn: %[2]s
uidNumber: %[3]d
gidNumber: %[3]d
homeDirectory: /home/%[2]s
loginShell: /bin/bash
userPassword: {CRYPT}!
shadowLastChange: 19000

dn: cn=%[2]s,ou=groups,%[1]s
objectClass: posixGroup
cn: %[2]s
gidNumber: %[3]d

dn: cn=%[4]s,ou=groups,%[1]s
objectClass: posixGroup
cn: %[4]s
gidNumber: %[5]d
memberUid: dave
memberUid: %[2]s
LDIF
chown -R openldap:openldap /var/lib/ldap
cat > /etc/nslcd.conf <<'CONF'
uid nslcd
gid nslcd
uri ldap://127.0.0.1/
base %[1]s
CONF
chmod 0640 /etc/nslcd.conf
chown root:nslcd /etc/nslcd.conf
sed -i -E 's/^((passwd|group|shadow):.*) ldap$/\1/' /etc/nsswitch.conf
install -d -m 0700 -o %[3]d -g %[3]d /home/%[2]s /home/%[2]s/.ssh
install -m 0600 -o %[3]d -g %[3]d %[6]s.pub /home/%[2]s/.ssh/authorized_keys
systemctl disable slapd.service nslcd.service
rm /usr/sbin/policy-rc.d
`, ldapBase, ldapUser, ldapUID, ldapGroup, ldapGID, rootKey)

// enableLDAP makes the image's directory a source of users and groups in c:
// ldap after the local sources in nsswitch.conf, slapd and nslcd running. A
// test makes the source unavailable with `systemctl stop slapd` (nslcd then
// cannot reach its server) or `systemctl stop nslcd` (libnss-ldapd cannot
// reach nslcd).
func enableLDAP(t *testing.T, c *Container) {
	t.Helper()
	c.Sh(t, `set -e
sed -i -E '/^(passwd|group|shadow):/{/ ldap$/!s/$/ ldap/}' /etc/nsswitch.conf
systemctl start slapd.service nslcd.service`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, err := c.Exec(t.Context(), "getent", "group", ldapGroup)
		if err == nil && strings.HasPrefix(out, fmt.Sprintf("%s:*:%d:", ldapGroup, ldapGID)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("LDAP group %s not resolvable 30 s after starting slapd and nslcd: %q, %v", ldapGroup, out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLDAPFixture proves the directory the unavailable-source tests rest on:
// its user and group resolve and its user logs in over ssh while it runs,
// and each way of stopping it makes lookups fail rather than succeed.
func TestLDAPFixture(t *testing.T) {
	forEachSuite(t, func(t *testing.T, s Suite) {
		c := boot(t, s)
		if out, _, err := c.Exec(t.Context(), "getent", "passwd", ldapUser); err == nil {
			t.Fatalf("%s resolves before enableLDAP: %q; the image must not use LDAP by default", ldapUser, out)
		}
		enableLDAP(t, c)
		if got := c.Run(t, "id", "-u", ldapUser); strings.TrimSpace(got) != fmt.Sprint(ldapUID) {
			t.Errorf("id -u %s = %q, want %d", ldapUser, got, ldapUID)
		}
		if got := c.Run(t, "id", "-nG", "dave"); !strings.Contains(got, ldapGroup) {
			t.Errorf("dave's groups %q lack %s", got, ldapGroup)
		}
		if out, stderr, err := c.SSH(t.Context(), ldapUser, "id -u"); err != nil || strings.TrimSpace(out) != fmt.Sprint(ldapUID) {
			t.Errorf("ssh %s: %q, %v\n%s", ldapUser, out, err, stderr)
		}
		for _, daemon := range []string{"slapd", "nslcd"} {
			t.Run(daemon+" stopped", func(t *testing.T) {
				c.Run(t, "systemctl", "stop", daemon+".service")
				defer enableLDAP(t, c)
				if out, _, err := c.Exec(t.Context(), "getent", "group", ldapGroup); err == nil {
					t.Errorf("getent group %s with %s stopped: %q, want a failure", ldapGroup, daemon, out)
				}
			})
		}
	})
}
