// Command istio-analyze-files runs Istio's analyzers (the pinned istio.io/istio module) over YAML
// files with Kubernetes runtime kinds kept: Services, Pods and Namespaces read from the files are
// analyzed too, which `istioctl analyze --use-kube=false` drops. It is the reference for Aviary's
// analyzer differential test (libs/mesh/validation/src/analyze/differential.spec.ts); built by
// `tools/istio/ensure-istiod.sh --analyzer`.
//
// Usage: istio-analyze-files FILE...
// Output: a JSON array of {code, level, message, origin} on stdout, every level (Info included).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/diag"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"
	"istio.io/istio/pkg/log"
)

type message struct {
	Code    string `json:"code"`
	Level   string `json:"level"`
	Message string `json:"message"`
	Origin  string `json:"origin"`
}

func main() {
	// stdout is the JSON only: Istio's logs go to stderr, errors only.
	opts := log.DefaultOptions()
	opts.OutputPaths = []string{"stderr"}
	opts.SetDefaultOutputLevel(log.OverrideScopeName, log.ErrorLevel)
	if err := log.Configure(opts); err != nil {
		fail(err)
	}
	// All namespaces; istio-system is the Istio (root) namespace, as istioctl's default.
	sa := local.NewIstiodAnalyzer(analyzers.AllCombined(), "", resource.Namespace("istio-system"), nil)
	readers := make([]local.ReaderSource, 0, len(os.Args)-1)
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		readers = append(readers, local.ReaderSource{Name: name, Reader: f})
	}
	// The test source keeps the runtime kinds (Service, Pod, Namespace) that the file source drops.
	// It must come first: later file sources (the defaults below) reuse its schemas.
	if err := sa.AddTestReaderKubeSource(readers); err != nil {
		fail(err)
	}
	// As istioctl with --use-kube=false: the default ingress gateway Istio's mesh config names.
	if err := sa.AddDefaultResources(); err != nil {
		fail(err)
	}
	result, err := sa.Analyze(make(chan struct{}))
	if err != nil {
		fail(err)
	}
	out := []message{}
	for _, m := range result.Messages.FilterOutLowerThan(diag.Info) {
		origin := ""
		if m.Resource != nil {
			origin = m.Resource.Origin.FriendlyName()
		}
		out = append(out, message{Code: m.Type.Code(), Level: m.Type.Level().String(), Message: fmt.Sprintf(m.Type.Template(), m.Parameters...), Origin: origin})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		fail(err)
	}
	fmt.Println(string(b))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
