// yaml-oracle reads a YAML stream on stdin and prints, one line per document,
// the JSON that Helm and kubectl decode from it (`null` for an empty
// document). An invalid stream prints the error on stderr and exits 1.
//
// What it models, and why: reconfig reads the stream Helm hands a
// post-renderer, and it must accept what Helm and kubectl accept and read the
// same data from it (issue 12). Two Go libraries do that reading, so the
// oracle is the two of them, both of which must accept the stream:
//
//   - gopkg.in/yaml.v3 walks the stream: Helm 4 parses the rendered stream
//     with go-yaml v3 (through kustomize's kyaml) before and after a
//     post-renderer, so what go-yaml v3 rejects fails Helm 4. The walk also
//     says where each document starts.
//   - sigs.k8s.io/yaml.YAMLToJSON (go-yaml v2 underneath) turns each document
//     into JSON, as Helm's and kubectl's decoders do before the objects reach
//     the API server: YAML 1.1 typing (yes, 0644), merge keys resolved, the
//     last of duplicate keys kept, !!binary decoded, keys that JSON cannot
//     hold and values it cannot hold (.inf) rejected.
//
// Each document is handed to YAMLToJSON as the source text from its start
// (its directives or `---` line) to the end of the stream: go-yaml v2 decodes
// the first document of its input and stops there. Re-encoding the v3 tree
// instead, as Helm 4 does, would not do: go-yaml v3's emitter changes data
// (trailing newlines of `>+` scalars, empty values in flow collections).
//
// Not modelled: the readers of apimachinery (kubectl) and kyaml (Helm 4),
// which cut the text at `---` lines before decoding (apimachinery is not
// packaged in Debian). They differ from this walk on one shape: documents
// separated by `...` alone, where go-yaml refuses the second document and
// they silently keep only the first (seen with Helm 4.1.4); refusing is the
// safer reference. Note also that go-yaml v2 and v3 both refuse a `%YAML 1.2`
// directive (Helm 3 and 4 fail on it too).
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
	sigsyaml "sigs.k8s.io/yaml"
)

func main() {
	text, err := io.ReadAll(os.Stdin)
	if err == nil {
		err = run(text, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "yaml-oracle:", err)
		os.Exit(1)
	}
}

func run(text []byte, out io.Writer) error {
	w := bufio.NewWriter(out)
	defer w.Flush()
	lines := lineStarts(text)
	dec := yaml.NewDecoder(bytes.NewReader(text))
	for n := 1; ; n++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("document %d: go-yaml v3: %w", n, err)
		}
		if doc.Line < 1 || doc.Line > len(lines) {
			return fmt.Errorf("document %d: go-yaml v3 placed it on line %d of %d", n, doc.Line, len(lines))
		}
		json, err := sigsyaml.YAMLToJSON(text[lines[doc.Line-1]:])
		if err != nil {
			return fmt.Errorf("document %d: sigs.k8s.io/yaml: %w", n, err)
		}
		w.Write(json)
		w.WriteString("\n")
	}
}

// lineStarts gives the byte offset of each line, counting line breaks as go-yaml does:
// CR LF, CR, LF, NEL, LS and PS.
func lineStarts(text []byte) []int {
	starts := []int{0}
	for i := 0; i < len(text); i++ {
		for _, br := range []string{"\r\n", "\r", "\n", "\u0085", "\u2028", "\u2029"} {
			if bytes.HasPrefix(text[i:], []byte(br)) {
				i += len(br) - 1
				starts = append(starts, i+1)
				break
			}
		}
	}
	return starts
}
