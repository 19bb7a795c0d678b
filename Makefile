# cairn: the commands a developer and CI use. See README.md.
GO        ?= go
BIN       := bin/cairn
PKGS      := ./...
FUZZTIME  ?= 10s
TESTFLAGS ?=

.PHONY: build test run lint bench fuzz clean

build:
	$(GO) build -o $(BIN) ./cmd/cairn

# The whole suite, race detector on, real processes included.
test:
	$(GO) test -race -count=1 -timeout 40m $(TESTFLAGS) $(PKGS)

# A local 3-node cluster on ports 7101-7103 (data), 7201-7203 (gossip) and
# 7301-7303 (admin); Ctrl-C stops it.
run: build
	./$(BIN) dev --nodes 3 --data ./data --base-port 7100

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	$(GO) mod verify

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Every fuzz target for FUZZTIME each (make fuzz FUZZTIME=1m for a longer pass).
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin data
