// Times post-renderers the way Helm runs one, without the rest of Helm: the stream goes in
// on a pipe written by a goroutine, the result comes back into a bytes.Buffer, and the
// parent waits (Helm 3's postrender.execRender does the same). `helm template` itself varies
// by more between runs than a post-renderer costs, so benches/crd_bench.py times this too.
//
// Usage: post_render STREAM RUNS 'CMD ARGS' ['CMD ARGS' ...]
// Runs each command RUNS times, interleaved, and prints the median, p25 and p75 in ms.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

func once(argv []string, stream []byte) (time.Duration, error) {
	start := time.Now()
	cmd := exec.Command(argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	var out, stderr bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	go func() {
		defer stdin.Close()
		io.Copy(stdin, bytes.NewBuffer(stream))
	}()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, stderr.String())
	}
	if out.Len() < len(stream)/2 {
		return 0, fmt.Errorf("%s: wrote %d bytes of a %d-byte stream", strings.Join(argv, " "), out.Len(), len(stream))
	}
	return time.Since(start), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: post_render STREAM RUNS 'CMD ARGS'...")
		os.Exit(2)
	}
	stream, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	runs, err := strconv.Atoi(os.Args[2])
	if err != nil || runs < 1 {
		fmt.Fprintln(os.Stderr, "RUNS must be a positive number")
		os.Exit(2)
	}
	commands := os.Args[3:]
	times := make([][]time.Duration, len(commands))
	for r := 0; r < runs; r++ {
		for i, c := range commands {
			d, err := once(strings.Fields(c), stream)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			times[i] = append(times[i], d)
		}
	}
	for i, c := range commands {
		t := times[i]
		sort.Slice(t, func(a, b int) bool { return t[a] < t[b] })
		fmt.Printf("%s\t%.2f\t%.2f\t%.2f\n", c, ms(t[len(t)/2]), ms(t[len(t)/4]), ms(t[3*len(t)/4]))
	}
}
