package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/certs"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// repoRoot is the repository root; go test runs in integration/.
const repoRoot = ".."

// composeTool finds `docker compose` or `docker-compose` and checks that
// the daemon answers, or skips the test saying why not.
func composeTool(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker cluster not tested: docker is not installed")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("docker cluster not tested: docker is not usable here: %s", firstLine(out))
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if exec.Command("docker-compose", "version").Run() == nil {
		return []string{"docker-compose"}
	}
	t.Skip("docker cluster not tested: neither `docker compose` nor `docker-compose` works")
	return nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// run runs a command that must succeed within five minutes, and returns
// its combined output.
func run(t *testing.T, env []string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return out
}

// buildImage builds the repository's Dockerfile the way `make docker`
// does: a static binary (CGO_ENABLED=0, which pebble allows) in a context
// holding nothing else, and removes the image when the test ends.
func buildImage(t *testing.T, image string) {
	t.Helper()
	ctxDir := t.TempDir()
	arch := runtime.GOARCH
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	run(t, env, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(ctxDir, "bin", "cairn-linux-"+arch), "github.com/cairnkv/cairn/cmd/cairn")
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(ctxDir, f), b, 0o644))
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", image).Run() })
	run(t, os.Environ(), "docker", "build", "--build-arg", "TARGETARCH="+arch, "-t", image, ctxDir)
}

// dockerCluster is docker-compose.yml's five nodes under a project name of
// their own, with host ports of their own, so they run beside any other
// cluster on the machine.
type dockerCluster struct {
	project  string
	certsDir string            // the host clients' CA and root's certificate (CAIRN_DOCKER_CERTS/ca)
	names    []string          // n1..n5
	addr     map[string]string // node -> host address of its data port
}

// target is the chaos scripts' target selector for this cluster.
func (d *dockerCluster) target() []string { return []string{"--docker", d.project} }

// startDockerCluster builds the image and brings the cluster up, or skips
// the test saying why it cannot; it returns once every node sees all five
// alive through the host CLI. When the test ends it heals any partition,
// then removes the containers, volumes, network and image, printing the
// nodes' logs first if the test failed.
func startDockerCluster(t *testing.T) *dockerCluster {
	t.Helper()
	compose := composeTool(t)
	stamp := fmt.Sprintf("%d%06d", os.Getpid(), time.Now().UnixNano()%1e6)
	image := "cairn-test:" + stamp
	d := &dockerCluster{project: "cairntest" + stamp, addr: map[string]string{}}
	buildImage(t, image)

	base := freeBase(t, 5)
	// The certs service writes the cluster's material here, as the
	// compose file's comment tells a user.
	material := t.TempDir()
	d.certsDir = filepath.Join(material, "ca")
	env := append(os.Environ(), "CAIRN_IMAGE="+image, "CAIRN_GOSSIP_PROFILE=local", "CAIRN_REJOIN_INTERVAL=2s",
		"CAIRN_DOCKER_CERTS="+material)
	for i := 1; i <= 5; i++ {
		n := fmt.Sprintf("n%d", i)
		d.names = append(d.names, n)
		d.addr[n] = fmt.Sprintf("127.0.0.1:%d", base+i)
		env = append(env, fmt.Sprintf("CAIRN_N%d_DATA_PORT=%d", i, base+i), fmt.Sprintf("CAIRN_N%d_ADMIN_PORT=%d", i, base+200+i))
	}
	dc := func(args ...string) []byte {
		full := append(append(compose[1:], "-p", d.project, "-f", filepath.Join(repoRoot, "docker-compose.yml")), args...)
		return run(t, env, compose[0], full...)
	}
	// Cleanups run last-registered first: heal, then logs, then down.
	t.Cleanup(func() { dc("down", "-v", "--remove-orphans", "-t", "5") })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("compose logs:\n%s", tail(dc("logs", "--no-color", "--tail", "30"), 16384))
		}
	})
	t.Cleanup(func() {
		if partitionUnsupported(false) == "" {
			out, errOut, code := chaosRun(t, "heal.sh", d.target()...)
			t.Logf("cleanup: heal.sh: %d %s%s", code, out, errOut)
		}
	})
	dc("up", "-d")
	for _, n := range d.names {
		d.sees(t, n, d.aliveExcept())
	}
	return d
}

// sees waits until node via sees exactly want (name: alive).
func (d *dockerCluster) sees(t *testing.T, via string, want map[string]bool) {
	t.Helper()
	waitForView(t, clientsOf(t, d.certsDir), d.addr[via], via, want)
}

func (d *dockerCluster) aliveExcept(down ...string) map[string]bool {
	v := map[string]bool{}
	for _, n := range d.names {
		v[n] = !contains(down, n)
	}
	return v
}

// TestDockerCluster checks the host CLI reaches docker-compose.yml's
// cluster and drives the chaos scripts against it: kill and restart, pause
// and resume, a 2|3 partition and heal.
func TestDockerCluster(t *testing.T) {
	d := startDockerCluster(t)
	parent, c := t, clientsOf(t, d.certsDir)
	addr, names, target := d.addr, d.names, d.target()
	sees, aliveExcept := d.sees, d.aliveExcept
	project := d.project
	c.mustCLI("put", "--addr", addr["n1"], "--w", "all", "docker", "k", "v")
	require.Equal(t, []string{"v"}, c.get(addr["n5"], "docker", "k").values())

	t.Run("bad arguments", func(t *testing.T) {
		chaosRefused(t, "unknown node n9 in compose project "+project+" (nodes: n1 n2 n3 n4 n5)", "kill.sh", append(target, "n9")...)
		chaosRefused(t, "no containers for compose project "+project+"x", "pause.sh", "--docker", project+"x", "n1")
		chaosRefused(t, "invalid compose project name", "pause.sh", "--docker", "Not A Project", "n1")
		chaosRefused(t, "n1 is still running", "restart.sh", append(target, "n1")...)
	})

	t.Run("kill and restart", func(t *testing.T) {
		skipAfterFailure(t, parent)
		c := clientsOf(t, d.certsDir)
		require.Contains(t, chaos(t, "kill.sh", append(target, "n5")...), "killed n5")
		sees(t, "n1", aliveExcept("n5"))
		chaosRefused(t, "n5 is not running", "kill.sh", append(target, "n5")...)
		require.Contains(t, chaos(t, "restart.sh", append(target, "n5")...), "restarted n5")
		sees(t, "n5", aliveExcept())
		sees(t, "n1", aliveExcept())
		require.Equal(t, []string{"v"}, c.get(addr["n5"], "docker", "k", "--r", "all").values())
	})

	t.Run("pause and resume", func(t *testing.T) {
		skipAfterFailure(t, parent)
		require.Contains(t, chaos(t, "pause.sh", append(target, "n4")...), "paused n4")
		sees(t, "n1", aliveExcept("n4"))
		require.Contains(t, chaos(t, "resume.sh", append(target, "n4")...), "resumed n4")
		sees(t, "n4", aliveExcept())
		sees(t, "n1", aliveExcept())
	})

	t.Run("partition and heal", func(t *testing.T) {
		skipAfterFailure(t, parent)
		c := clientsOf(t, d.certsDir)
		if why := partitionUnsupported(false); why != "" {
			t.Skip("docker partition not tested: " + why)
		}
		require.Contains(t, chaos(t, "partition.sh", append(target, "n1,n2", "n3,n4,n5")...), "partitioned n1,n2 | n3,n4,n5")
		left, right := aliveExcept("n3", "n4", "n5"), aliveExcept("n1", "n2")
		for _, n := range names {
			if left[n] {
				sees(t, n, left)
			} else {
				sees(t, n, right)
			}
		}
		c.mustCLI("put", "--addr", addr["n1"], "--w", "1", "docker", "left", "from n1")
		c.mustCLI("put", "--addr", addr["n4"], "--w", "1", "docker", "right", "from n4")

		require.Contains(t, chaos(t, "heal.sh", target...), "healed the partition n1,n2 | n3,n4,n5")
		require.Contains(t, chaos(t, "heal.sh", target...), "no partition to heal")
		for _, n := range names {
			sees(t, n, aliveExcept())
		}
		require.Equal(t, []string{"from n1"}, c.get(addr["n5"], "docker", "left", "--r", "all").values())
		require.Equal(t, []string{"from n4"}, c.get(addr["n2"], "docker", "right", "--r", "all").values())
	})
}

// serverFlags lists the flags `cairn server` accepts, from its help.
func serverFlags(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(cairnBin, "server", "--help").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// flagValues turns a command line into flag -> value, accepting both
// "--flag value" and "--flag=value", and checks every flag is one `cairn
// server` knows.
func flagValues(t *testing.T, help string, args []string) map[string]string {
	t.Helper()
	v := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		require.True(t, strings.HasPrefix(a, "--"), "argument %q is not a flag", a)
		name, val, ok := strings.Cut(a, "=")
		if !ok {
			require.Less(t, i+1, len(args), "flag %s has no value", a)
			i++
			val = args[i]
		}
		require.Contains(t, help, "  "+name+" ", "cairn server has no flag %s", name)
		v[name] = val
	}
	return v
}

// TestComposeFile checks docker-compose.yml against what the chaos scripts,
// the docs and the host CLI rely on, without Docker.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	require.NoError(t, err)
	var f struct {
		Services map[string]struct {
			Image       string
			Entrypoint  []string
			Command     []string
			NetworkMode string                                `yaml:"network_mode"`
			DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
			Ports       []string
			Volumes     []string
			Networks    []string
			Restart     string
			Labels      map[string]string
			Environment map[string]string
			Healthcheck struct{ Test []string }
		}
		Networks map[string]any
		Volumes  map[string]any
	}
	require.NoError(t, yaml.Unmarshal(raw, &f))
	help := serverFlags(t)
	var names, seeds []string
	for i := 1; i <= 5; i++ {
		names = append(names, fmt.Sprintf("n%d", i))
		seeds = append(seeds, fmt.Sprintf("n%d:7201", i))
	}
	// Five nodes, and the one-shot service that makes their certificates
	// and gossip key first.
	require.Len(t, f.Services, 6)
	certsSvc := f.Services["certs"]
	require.Equal(t, "${CAIRN_IMAGE:-cairn:latest}", certsSvc.Image)
	require.Equal(t, []string{"/cairn", "cert", "create-cluster", "--certs-dir", "/certs"}, certsSvc.Entrypoint)
	var want []string
	for _, n := range names {
		want = append(want, n+"="+n)
	}
	require.Equal(t, want, certsSvc.Command, "each node's certificate names its service, which peers dial")
	require.Equal(t, []string{"${CAIRN_DOCKER_CERTS:-./data/docker/certs}:/certs"}, certsSvc.Volumes)
	require.Equal(t, "none", certsSvc.NetworkMode)
	require.Empty(t, certsSvc.Labels["cairn.role"], "the certs service is no node")
	for i, n := range names {
		s, ok := f.Services[n]
		require.True(t, ok, "no service %s", n)
		require.Equal(t, "${CAIRN_IMAGE:-cairn:latest}", s.Image)
		require.Empty(t, s.Restart, "a node a chaos script killed must stay dead")
		require.Equal(t, map[string]string{
			"--name": n, "--advertise": n, "--data": "/data", "--listen": "0.0.0.0:7101",
			"--gossip": "0.0.0.0:7201", "--admin": "0.0.0.0:7301", "--join": strings.Join(seeds, ","),
			"--certs-dir": "/certs/" + n, "--gossip-key-file": "/certs/" + n + "/gossip.keys",
		}, flagValues(t, help, s.Command), "%s's command: secure, with its own material", n)
		require.Equal(t, "service_completed_successfully", s.DependsOn["certs"].Condition)
		require.Equal(t, "node", s.Labels["cairn.role"], "what the chaos scripts find nodes by")
		require.NotContains(t, s.Environment, "CAIRN_INSECURE")
		require.Equal(t, "/certs/ca", s.Environment["CAIRN_CERTS_DIR"], "the healthcheck's CLI finds root's certificate")
		require.ElementsMatch(t, []string{
			fmt.Sprintf("127.0.0.1:${CAIRN_N%d_DATA_PORT:-%d}:7101", i+1, 7101+i),
			fmt.Sprintf("127.0.0.1:${CAIRN_N%d_ADMIN_PORT:-%d}:7301", i+1, 7301+i),
		}, s.Ports)
		require.Equal(t, []string{n + "-data:/data", "${CAIRN_DOCKER_CERTS:-./data/docker/certs}/" + n + ":/certs/" + n,
			"${CAIRN_DOCKER_CERTS:-./data/docker/certs}/ca:/certs/ca:ro"}, s.Volumes)
		require.Contains(t, f.Volumes, n+"-data")
		require.Len(t, s.Networks, 1)
		require.Contains(t, f.Networks, s.Networks[0])
		require.Equal(t, []string{"CMD", "/cairn", "status", "--addr", "127.0.0.1:7101"}, s.Healthcheck.Test)
		for k := range s.Environment {
			name := "--" + strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "CAIRN_")), "_", "-")
			require.Contains(t, help, "  "+name+" ", "environment %s sets no cairn server flag", k)
		}
	}
}

// k8sObject is the part of a Kubernetes object the manifests test reads.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string
	Metadata   struct {
		Name   string
		Labels map[string]string
	}
	Spec struct {
		// Service
		ClusterIP                string `yaml:"clusterIP"`
		PublishNotReadyAddresses bool   `yaml:"publishNotReadyAddresses"`
		Ports                    []struct {
			Name, Protocol string
			Port           int
			TargetPort     string `yaml:"targetPort"`
		}
		// Service, PodDisruptionBudget and StatefulSet
		Selector       yaml.Node
		MaxUnavailable int `yaml:"maxUnavailable"`
		// StatefulSet
		ServiceName string `yaml:"serviceName"`
		Replicas    int
		Template    struct {
			Metadata struct{ Labels map[string]string }
			Spec     struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					FSGroup      int  `yaml:"fsGroup"`
				} `yaml:"securityContext"`
				Containers []struct {
					Name, Image string
					Args        []string
					Env         []struct {
						Name      string
						ValueFrom struct {
							FieldRef struct {
								FieldPath string `yaml:"fieldPath"`
							} `yaml:"fieldRef"`
						} `yaml:"valueFrom"`
					}
					Ports []struct {
						Name, Protocol string
						ContainerPort  int `yaml:"containerPort"`
					}
					ReadinessProbe k8sProbe `yaml:"readinessProbe"`
					LivenessProbe  k8sProbe `yaml:"livenessProbe"`
					VolumeMounts   []struct {
						Name      string
						MountPath string `yaml:"mountPath"`
						ReadOnly  bool   `yaml:"readOnly"`
					} `yaml:"volumeMounts"`
				}
				Volumes []struct {
					Name   string
					Secret struct {
						SecretName  string `yaml:"secretName"`
						DefaultMode int    `yaml:"defaultMode"`
						Items       []struct{ Key, Path string }
					}
				}
			}
		}
		VolumeClaimTemplates []struct {
			Metadata struct{ Name string }
		} `yaml:"volumeClaimTemplates"`
	}
}

type k8sProbe struct {
	HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
}

func readManifests(t *testing.T, dir string) (map[string]k8sObject, []string) {
	t.Helper()
	var kust struct{ Resources []string }
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &kust))
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	var listed []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			listed = append(listed, filepath.Base(f))
		}
	}
	require.ElementsMatch(t, listed, kust.Resources, "kustomization.yaml lists every manifest")
	objs := map[string]k8sObject{}
	for _, f := range kust.Resources {
		raw, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if err != nil {
				require.EqualError(t, err, "EOF", "%s", f)
				break
			}
			require.NotEmpty(t, o.APIVersion, "%s: an object without apiVersion", f)
			require.NotEmpty(t, o.Metadata.Name, "%s: an object without a name", f)
			key := o.Kind + "/" + o.Metadata.Name
			require.NotContains(t, objs, key, "%s defined twice", key)
			objs[key] = o
		}
	}
	return objs, kust.Resources
}

// TestKubernetesManifests checks deploy/k8s structurally: the fields that
// tie the objects together and to `cairn server`'s flags. (No cluster runs
// them here.)
func TestKubernetesManifests(t *testing.T) {
	objs, _ := readManifests(t, filepath.Join(repoRoot, "deploy", "k8s"))
	sts, ok := objs["StatefulSet/cairn"]
	require.True(t, ok, "a StatefulSet named cairn")
	require.Equal(t, "apps/v1", sts.APIVersion)
	require.Equal(t, 5, sts.Spec.Replicas)
	podLabels := sts.Spec.Template.Metadata.Labels
	require.NotEmpty(t, podLabels)
	matches := func(sel yaml.Node, what string) {
		t.Helper()
		var s struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		}
		var plain map[string]string
		require.NoError(t, sel.Decode(&s))
		if s.MatchLabels == nil {
			require.NoError(t, sel.Decode(&plain))
			s.MatchLabels = plain
		}
		require.NotEmpty(t, s.MatchLabels, "%s has a selector", what)
		for k, v := range s.MatchLabels {
			require.Equal(t, v, podLabels[k], "%s selects the StatefulSet's pods", what)
		}
	}
	matches(sts.Spec.Selector, "the StatefulSet")

	peers, ok := objs["Service/"+sts.Spec.ServiceName]
	require.True(t, ok, "the StatefulSet's serviceName %q is a Service", sts.Spec.ServiceName)
	require.Equal(t, "None", peers.Spec.ClusterIP, "the peers Service is headless")
	require.True(t, peers.Spec.PublishNotReadyAddresses, "starting nodes must find each other before they are ready")
	matches(peers.Spec.Selector, "the peers Service")
	var gossipProtocols []string
	for _, p := range peers.Spec.Ports {
		if p.Port == 7201 {
			gossipProtocols = append(gossipProtocols, p.Protocol)
		}
	}
	require.ElementsMatch(t, []string{"TCP", "UDP"}, gossipProtocols, "gossip is TCP and UDP")

	client, ok := objs["Service/cairn"]
	require.True(t, ok, "a client Service named cairn")
	require.NotEqual(t, "None", client.Spec.ClusterIP)
	matches(client.Spec.Selector, "the client Service")
	if pdb, ok := objs["PodDisruptionBudget/cairn"]; ok {
		matches(pdb.Spec.Selector, "the PodDisruptionBudget")
		require.Equal(t, 1, pdb.Spec.MaxUnavailable)
	}

	pod := sts.Spec.Template.Spec
	require.True(t, pod.SecurityContext.RunAsNonRoot)
	require.NotZero(t, pod.SecurityContext.FSGroup, "fsGroup makes the volume writable for the non-root user")
	require.Len(t, pod.Containers, 1)
	ctr := pod.Containers[0]
	args := flagValues(t, serverFlags(t), ctr.Args)
	require.Equal(t, "$(POD_NAME)", args["--name"])
	require.Equal(t, "$(POD_IP)", args["--advertise"])
	require.Equal(t, sts.Spec.ServiceName+":7201", args["--join"], "every node joins through the headless Service")
	require.NotContains(t, args, "--insecure")
	require.Equal(t, "/certs/$(POD_NAME)", args["--certs-dir"])
	require.Equal(t, "/certs/gossip.keys", args["--gossip-key-file"])
	env := map[string]string{}
	for _, e := range ctr.Env {
		env[e.Name] = e.ValueFrom.FieldRef.FieldPath
	}
	require.Equal(t, "metadata.name", env["POD_NAME"])
	require.Equal(t, "status.podIP", env["POD_IP"])

	ports := map[string]int{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}
	portOf := func(flag string) int {
		_, p, ok := strings.Cut(args[flag], ":")
		require.True(t, ok, "%s %s has a port", flag, args[flag])
		n, err := strconv.Atoi(p)
		require.NoError(t, err)
		return n
	}
	require.Equal(t, portOf("--listen"), ports["data"])
	require.Equal(t, portOf("--gossip"), ports["gossip-tcp"])
	require.Equal(t, portOf("--gossip"), ports["gossip-udp"])
	require.Equal(t, portOf("--admin"), ports["admin"])
	for _, svc := range []k8sObject{peers, client} {
		for _, p := range svc.Spec.Ports {
			require.Contains(t, ports, p.TargetPort, "Service %s targets a named container port", svc.Metadata.Name)
		}
	}
	require.Equal(t, "/readyz", ctr.ReadinessProbe.HTTPGet.Path)
	require.Equal(t, "/healthz", ctr.LivenessProbe.HTTPGet.Path)
	require.Equal(t, "admin", ctr.ReadinessProbe.HTTPGet.Port)
	require.Equal(t, "admin", ctr.LivenessProbe.HTTPGet.Port)

	require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
	claim := sts.Spec.VolumeClaimTemplates[0].Metadata.Name
	require.Len(t, ctr.VolumeMounts, 2)
	require.Equal(t, claim, ctr.VolumeMounts[0].Name)
	require.Equal(t, args["--data"], ctr.VolumeMounts[0].MountPath)
	require.Equal(t, "/certs", ctr.VolumeMounts[1].MountPath)
	require.True(t, ctr.VolumeMounts[1].ReadOnly)

	// The certificates: the Secret kustomization.yaml generates from what
	// `make k8s-certs` writes, each pod's files where its --certs-dir
	// points, and each node's certificate names it (and, for a client
	// that checks host names on the admin port, its DNS names).
	require.Len(t, pod.Volumes, 1)
	vol := pod.Volumes[0]
	require.Equal(t, ctr.VolumeMounts[1].Name, vol.Name)
	require.Equal(t, 0o440, vol.Secret.DefaultMode, "readable by the non-root user through fsGroup, and no one else")
	var kust struct {
		SecretGenerator []struct {
			Name  string
			Files []string
		} `yaml:"secretGenerator"`
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "k8s", "kustomization.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &kust))
	require.Len(t, kust.SecretGenerator, 1)
	require.Equal(t, vol.Secret.SecretName, kust.SecretGenerator[0].Name)
	made := t.TempDir()
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	require.NoError(t, err)
	require.Contains(t, string(mk), "cert create-cluster --certs-dir deploy/k8s/certs")
	var nodeArgs []string
	for i := range sts.Spec.Replicas {
		nodeArgs = append(nodeArgs, fmt.Sprintf("cairn-%d=cairn-%d.%s,cairn", i, i, sts.Spec.ServiceName))
	}
	(&cluster{t: t}).mustCLI(append([]string{"cert", "create-cluster", "--certs-dir", made}, nodeArgs...)...)
	source := map[string]string{} // Secret key -> file it is made from
	for _, f := range kust.SecretGenerator[0].Files {
		key, file, ok := strings.Cut(f, "=")
		require.True(t, ok, "%s: key=file", f)
		require.True(t, strings.HasPrefix(file, "certs/"), "%s comes from deploy/k8s/certs", f)
		require.FileExists(t, filepath.Join(made, strings.TrimPrefix(file, "certs/")), "create-cluster writes %s", file)
		require.NotContains(t, file, "ca.key", "the CA's key stays out of the Secret")
		source[key] = strings.TrimPrefix(file, "certs/")
	}
	// Lay the Secret out as the pod sees it and load each node's material.
	mounted := t.TempDir()
	for _, it := range vol.Secret.Items {
		src, ok := source[it.Key]
		require.True(t, ok, "item %s is a key of the Secret", it.Key)
		raw, err := os.ReadFile(filepath.Join(made, src))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(mounted, it.Path)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(mounted, it.Path), raw, 0o600))
	}
	require.FileExists(t, filepath.Join(mounted, "gossip.keys"))
	for i := range sts.Spec.Replicas {
		name := fmt.Sprintf("cairn-%d", i)
		src, err := certs.LoadNode(filepath.Join(mounted, name), name)
		require.NoError(t, err, "%s's --certs-dir", name)
		require.Contains(t, src.Current().DNSNames, name+"."+sts.Spec.ServiceName)
		require.Contains(t, src.Current().DNSNames, client.Metadata.Name, "clients in the cluster dial the Service")
	}
}
