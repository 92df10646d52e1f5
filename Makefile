# netns-session build, test and install.
#
#   make            build ./netns-session
#   make test       unit tests, then the systemd-nspawn suites (root; installs deps)
#   make install    PREFIX=/usr DESTDIR= : /usr/sbin/netns-session, units, default config
#   make bench      the login path's costs, the tables of BENCHMARKS.md (root)

PREFIX     ?= /usr
SBINDIR    ?= $(PREFIX)/sbin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
DESTDIR    ?=

GO         ?= go
VERSION    ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -s -w -X main.version=$(VERSION)
# urfave_cli_no_docs leaves out the CLI's man page and markdown writers, whose
# package init costs every login a third of a millisecond (BENCHMARKS.md).
# TAGS adds build tags, comma-separated.
TAGS       ?=
comma      := ,
GOTAGS      = $(subst $() $(),$(comma),$(strip urfave_cli_no_docs $(subst $(comma), ,$(TAGS))))
BIN        := netns-session
STATICCHECK_VERSION := v0.8.2
FUZZTIME   ?= 60s
# fuzz-long gives the config parser, which reads what administrators write,
# the long run; the other parsers read what the kernel and pam_exec write.
FUZZTIME_LONG        ?= 10m
FUZZTIME_LONG_OTHERS ?= 2m
NSPAWN_TIMEOUT ?= 40m

UNIT_PKGS   = $(shell $(GO) list ./... | grep -v /tests/)

.PHONY: all build test test-unit test-nspawn demo bench fuzz fuzz-long lint install deps clean

all: build

build:
	$(GO) build -trimpath -tags '$(GOTAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/netns-session

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

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/netns-session
	for u in $(wildcard units/*); do install -D -m 0644 $$u $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/security/netns-session.d
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/security/netns-session.conf ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/security/netns-session.conf"; \
	else \
		install -m 0644 etc/netns-session.conf $(DESTDIR)$(SYSCONFDIR)/security/netns-session.conf; \
	fi

# deps installs the host packages the nspawn suites need, and only those missing.
deps:
	@missing=""; \
	command -v systemd-nspawn >/dev/null || missing="$$missing systemd-container"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
	if [ -n "$$missing" ]; then \
		echo "installing host packages for the nspawn suites:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else \
		echo "host packages for the nspawn suites are present (systemd-container, debootstrap)"; \
	fi

clean:
	rm -f $(BIN)
	$(GO) clean -testcache
