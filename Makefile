# netns-session build, test and install.
#
#   make            build ./netns-session
#   make test       unit tests, then the systemd-nspawn suites (root; installs deps)
#   make install    PREFIX=/usr DESTDIR= : /usr/sbin/netns-session, units, default config,
#                   man pages, completions, journal catalog
#   make package    dist/netns-session_VERSION_amd64.deb and dist/netns-session-VERSION.x86_64.rpm
#   make bench      the login path's costs, the tables of BENCHMARKS.md (root)

PREFIX     ?= /usr
SBINDIR    ?= $(PREFIX)/sbin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
MANDIR     ?= $(PREFIX)/share/man
CATALOGDIR ?= $(PREFIX)/lib/systemd/catalog
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
# zsh's upstream default; Debian's zsh reads $(PREFIX)/share/zsh/vendor-completions.
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
DESTDIR    ?=
# Generated files: man pages, completions, the packages' staging tree.
BUILDDIR   ?= build
DISTDIR    ?= dist

GO         ?= go
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -s -w -X main.version=$(VERSION)
# urfave_cli_no_docs leaves out the CLI's man page and markdown writers, whose
# package init costs every login a third of a millisecond (BENCHMARKS.md).
# TAGS adds build tags, comma-separated.
TAGS       ?=
comma      := ,
GOTAGS      = $(subst $() $(),$(comma),$(strip urfave_cli_no_docs $(subst $(comma), ,$(TAGS))))
BIN        := netns-session
STATICCHECK_VERSION := v0.8.2
# nfpm builds the .deb and the .rpm from one spec (packaging/nfpm.yaml). It is
# run with `go run @version`, like staticcheck, not declared as a `tool` in
# go.mod: a tool line would pull nfpm's large dependency graph, which needs a
# newer Go than the 1.24 the module builds with, into our go.mod.
NFPM_VERSION   := v2.45.2
MD2MAN_VERSION := v2.0.7
# The package version: VERSION made one dpkg and rpm both accept and order
# (packaging/version.sh), 0.0.0~gitDATE.HASH before the first tag.
PKG_VERSION ?= $(shell packaging/version.sh '$(VERSION)')
MAINTAINER  ?= netns-session maintainers <maintainers@users.noreply.r-seed-1a3d0696.example>
MAN_PAGES   := $(BUILDDIR)/man/netns-session.8 $(BUILDDIR)/man/netns-session.conf.5
FUZZTIME   ?= 60s
# fuzz-long gives the config parser, which reads what administrators write,
# the long run; the other parsers read what the kernel and pam_exec write.
FUZZTIME_LONG        ?= 10m
FUZZTIME_LONG_OTHERS ?= 2m
NSPAWN_TIMEOUT ?= 40m

UNIT_PKGS   = $(shell $(GO) list ./... | grep -v /tests/)

.PHONY: all build man completion package test test-unit test-nspawn demo bench fuzz fuzz-long lint install deps clean

all: build

build:
	$(GO) build -trimpath -tags '$(GOTAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/netns-session

# man pages from their markdown sources in docs/.
man: $(MAN_PAGES)

$(BUILDDIR)/man/%: docs/%.md
	@mkdir -p $(@D)
	$(GO) run github.com/cpuguy83/go-md2man/v2@$(MD2MAN_VERSION) -in $< -out $@

# completion scripts, printed by the binary that ships with them.
completion: build
	@mkdir -p $(BUILDDIR)/completion
	$(abspath $(BIN)) completion bash > $(BUILDDIR)/completion/netns-session.bash
	$(abspath $(BIN)) completion zsh > $(BUILDDIR)/completion/_netns-session
	$(abspath $(BIN)) completion fish > $(BUILDDIR)/completion/netns-session.fish

# package stages everything under $(BUILDDIR)/pkg, the directory nfpm reads
# packaging/nfpm.yaml's paths from. Files carry the last commit's time
# (SOURCE_DATE_EPOCH), so that a rebuild of the same commit is the same
# package. The libc dependency is the newest glibc symbol version the binary
# links to.
package: build man completion
	@case "$$($(GO) env GOARCH)" in amd64) ;; *) echo "make package: amd64 only, for now"; exit 1;; esac
	rm -rf $(BUILDDIR)/pkg
	mkdir -p $(BUILDDIR)/pkg/man $(BUILDDIR)/pkg/doc $(BUILDDIR)/pkg/etc $(DISTDIR)
	cp $(BIN) $(BUILDDIR)/pkg/netns-session
	cp -r units catalog packaging $(BUILDDIR)/completion $(BUILDDIR)/pkg/
	cp etc/netns-session.conf $(BUILDDIR)/pkg/etc/
	for m in $(MAN_PAGES); do gzip -9n < $$m > $(BUILDDIR)/pkg/man/$$(basename $$m).gz; done
	cp README.md BENCHMARKS.md packaging/copyright $(BUILDDIR)/pkg/doc/
	{ printf 'netns-session (%s) unstable; urgency=medium\n\n' '$(PKG_VERSION)'; \
	  printf '  * Built from %s. The git history is the changelog.\n\n' '$(VERSION)'; \
	  printf ' -- %s  %s\n' '$(MAINTAINER)' "$$(git log -1 --format=%cD 2>/dev/null || date -R)"; \
	} | gzip -9n > $(BUILDDIR)/pkg/doc/changelog.gz
	glibc=$$(objdump -T $(BIN) | grep -o 'GLIBC_2\.[0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -n1); \
	[ -n "$$glibc" ] || { echo "make package: no glibc symbol versions in $(BIN)"; exit 1; }; \
	cd $(BUILDDIR)/pkg && for p in deb rpm; do \
		case $$p in \
		deb) target=$(abspath $(DISTDIR))/netns-session_$(PKG_VERSION)_amd64.deb;; \
		rpm) target=$(abspath $(DISTDIR))/netns-session-$(PKG_VERSION).x86_64.rpm;; \
		esac; \
		SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) \
		NETNS_SESSION_PKG_VERSION='$(PKG_VERSION)' NETNS_SESSION_MAINTAINER='$(MAINTAINER)' NETNS_SESSION_GLIBC=$$glibc \
		$(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION) package \
			--config packaging/nfpm.yaml --packager $$p --target $$target || exit 1; \
	done

test: test-unit test-nspawn

# config is pure Go (lookups come through userdb, the one cgo package): its
# parser and FuzzParse must build and pass without cgo. The binary must not:
# a build without cgo fails saying why (internal/userdb/nocgo.go).
test-unit:
	$(GO) test -count=1 $(UNIT_PKGS)
	CGO_ENABLED=0 $(GO) test -count=1 ./internal/config/...
	@out=$$(CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/netns-session 2>&1); case "$$out" in \
		*netns_session_needs_cgo_to_look_up_users*) ;; \
		*) echo "a build without cgo must fail saying why cgo is required (internal/userdb/nocgo.go), got:"; echo "$$out"; exit 1;; \
	esac

# The nspawn suites boot Debian bookworm and trixie containers; they need root,
# systemd-nspawn and debootstrap. Images are cached under
# /var/cache/netns-session-test (override with NETNS_SESSION_CACHE).
test-nspawn: deps
	NETNS_SESSION_NSPAWN=1 $(GO) test -count=1 -v -timeout $(NSPAWN_TIMEOUT) -skip '^TestBench' ./tests/nspawn/

# demo boots a throwaway trixie container, maps alice to a namespace, logs in
# over ssh as alice and as unmapped bob, and says where each landed. go test
# runs without package arguments so that the demo's own output is shown.
demo: deps
	cd tests/nspawn && NETNS_SESSION_NSPAWN=1 $(GO) test -count=1 -run '^TestDemo$$'

# bench boots trixie, then bookworm, measures the login path and prints the
# tables of BENCHMARKS.md; perf counts the connections the hook makes. Like
# demo, go test runs without package arguments so that the tables are shown.
bench: deps
	@command -v perf >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf; }
	cd tests/nspawn && NETNS_SESSION_NSPAWN=1 NETNS_SESSION_BENCH=1 $(GO) test -count=1 -timeout $(NSPAWN_TIMEOUT) -run '^TestBench'

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./internal/config

# fuzz-long runs every fuzz target in turn. A crasher lands in the package's
# testdata/fuzz/TARGET/ and stays there as a regression case.
fuzz-long:
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME_LONG) ./internal/config
	$(GO) test -run='^$$' -fuzz='^FuzzParsePAMEnviron$$' -fuzztime=$(FUZZTIME_LONG_OTHERS) ./cmd/netns-session
	$(GO) test -run='^$$' -fuzz='^FuzzParseSyscall$$' -fuzztime=$(FUZZTIME_LONG_OTHERS) ./internal/nsjoin

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

install: build man completion
	install -D -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/netns-session
	for u in $(wildcard units/*); do install -D -m 0644 $$u $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	install -D -m 0644 $(BUILDDIR)/man/netns-session.8 $(DESTDIR)$(MANDIR)/man8/netns-session.8
	install -D -m 0644 $(BUILDDIR)/man/netns-session.conf.5 $(DESTDIR)$(MANDIR)/man5/netns-session.conf.5
	install -D -m 0644 $(BUILDDIR)/completion/netns-session.bash $(DESTDIR)$(BASHCOMPDIR)/netns-session
	install -D -m 0644 $(BUILDDIR)/completion/_netns-session $(DESTDIR)$(ZSHCOMPDIR)/_netns-session
	install -D -m 0644 $(BUILDDIR)/completion/netns-session.fish $(DESTDIR)$(FISHCOMPDIR)/netns-session.fish
	install -D -m 0644 catalog/netns-session.catalog $(DESTDIR)$(CATALOGDIR)/netns-session.catalog
	@if [ -z "$(DESTDIR)" ] && command -v journalctl >/dev/null; then journalctl --update-catalog; fi
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/security/netns-session.d
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/security/netns-session.conf ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/security/netns-session.conf"; \
	else \
		install -m 0644 etc/netns-session.conf $(DESTDIR)$(SYSCONFDIR)/security/netns-session.conf; \
	fi

# deps installs the host packages the nspawn suites need, and only those
# missing: lintian and rpm check the packages (package_test.go), objdump
# (binutils) finds the binary's libc dependency for make package.
deps:
	@missing=""; \
	command -v systemd-nspawn >/dev/null || missing="$$missing systemd-container"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
	command -v lintian >/dev/null || missing="$$missing lintian"; \
	command -v rpm >/dev/null || missing="$$missing rpm"; \
	command -v objdump >/dev/null || missing="$$missing binutils"; \
	if [ -n "$$missing" ]; then \
		echo "installing host packages for the nspawn suites:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else \
		echo "host packages for the nspawn suites are present (systemd-container, debootstrap, lintian, rpm, binutils)"; \
	fi

clean:
	rm -f $(BIN)
	rm -rf $(BUILDDIR) $(DISTDIR)
	$(GO) clean -testcache
