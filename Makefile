# cairn: the commands a developer and CI use. See README.md.
GO        ?= go
BIN       := bin/cairn
PKGS      := ./...
FUZZTIME  ?= 100000x
TESTFLAGS ?=

.PHONY: build test run lint bench perf fuzz clean docker k8s-certs

build:
	$(GO) build -o $(BIN) ./cmd/cairn

# The whole suite, race detector on, real processes included.
test:
	$(GO) test -race -count=1 -timeout 40m $(TESTFLAGS) $(PKGS)

# A local 3-node cluster on ports 7101-7103 (data), 7201-7203 (gossip) and
# 7301-7303 (admin, with the web console at /: cairn dev prints its URL);
# Ctrl-C stops it.
run: build
	./$(BIN) dev --nodes 3 --data ./data --base-port 7100

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	$(GO) mod verify

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# The standard `cairn bench` runs on a fresh 3-node `cairn dev`; appends the
# figures to docs/PERFORMANCE.md (PERF_DURATION=15s, PERF_NOTE=..., see the
# script).
perf:
	./scripts/perf.sh

# Every fuzz target for FUZZTIME inputs each (make fuzz FUZZTIME=2000000x for a longer pass).
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# The FROM-scratch image (Dockerfile): a static binary built here, since no
# base image can be pulled; then `docker compose up -d` for a 5-node cluster.
IMAGE       ?= cairn:latest
DOCKER_ARCH ?= $(shell $(GO) env GOARCH)
docker:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(DOCKER_ARCH) $(GO) build -trimpath -ldflags='-s -w' -o bin/cairn-linux-$(DOCKER_ARCH) ./cmd/cairn
	docker build --build-arg TARGETARCH=$(DOCKER_ARCH) -t $(IMAGE) .

# The certificates and gossip key deploy/k8s's Secret is generated from
# (kubectl apply -k deploy/k8s), for the five pods cairn-0..cairn-4; kept
# if they exist (delete deploy/k8s/certs for a new CA).
k8s-certs: build
	./$(BIN) cert create-cluster --certs-dir deploy/k8s/certs \
		$(foreach i,0 1 2 3 4,cairn-$(i)=cairn-$(i).cairn-peers,cairn)

clean:
	rm -rf bin data
