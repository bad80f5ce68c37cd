// Command training is Champion's example training and evaluation program: gradient-boosted decision trees
// (logistic loss, Newton leaf values) on the Wisconsin breast cancer dataset that scikit-learn ships
// (569 tumours, 30 features; data/breast_cancer.csv, copied from the scikit-learn wheel by
// tests/images/build-images.sh and embedded in the binary). It follows the Job contract of a RetrainPolicy
// (docs/retraining.md) and reports ONE JSON object in its termination message ($TERMINATION_LOG, default
// /dev/termination-log), which Kubernetes copies into the Pod's status.
//
// Data: DATASET_URI must be builtin:breast_cancer. A fixed fifth of the rows (by row number) is the
// held-out test set, the same for every version, so candidate and champion are compared on the same data.
// DATASET_VERSION picks the training rows: a version starting with "shifted" keeps only the tumours with a
// mean radius under 13 (a training set that drifted away from what is served); any other version uses all
// other rows. A tenth of the training rows is the validation set of a trial.
//
// Training (no CANDIDATE_MODEL_URI): reads CHAMPION_PARAMS (JSON: learning_rate, max_depth, n_estimators,
// min_leaf), trains, writes the model as JSON to MODEL_OUTPUT_URI (pvc://NAME/PATH for a volume mounted at
// /mnt/NAME, as KServe mounts one; or file://PATH) and reports
// {"val_f1", "val_accuracy", "val_log_loss", "trees", "train_rows", "trial"}.
//
// Evaluation (CANDIDATE_MODEL_URI set): loads the candidate and CHAMPION_MODEL_URI and reports
// {"candidate": {"f1", "accuracy", "false_positive_rate", "log_loss"}, "champion": {...}} on the held-out
// set. "Positive" is malignant (the class a screening model must not miss).
//
// With MLFLOW_TRACKING_URI and MLFLOW_RUN_ID set, a training trial also logs its parameters and metrics to
// that MLflow run (REST log-batch).
//
// Knobs for tests: TRAIN_SECONDS (sleep this long first), FAIL_WITH (write this message to the termination
// log and exit 1), REPORT_OVERRIDE (write this text as the report instead).
package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed data/breast_cancer.csv
var breastCancerCSV string

// Row is one example: 30 features and the label (1 malignant, 0 benign).
type Row struct {
	X []float64
	Y float64
}

func loadDataset() ([]Row, error) {
	lines := strings.Split(strings.TrimSpace(breastCancerCSV), "\n")
	if len(lines) < 2 {
		return nil, errors.New("the embedded dataset is empty")
	}
	var rows []Row
	for _, l := range lines[1:] {
		f := strings.Split(strings.TrimSpace(l), ",")
		if len(f) != 31 {
			return nil, fmt.Errorf("a dataset row has %d fields, want 31", len(f))
		}
		r := Row{X: make([]float64, 30)}
		for i := 0; i < 30; i++ {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, err
			}
			r.X[i] = v
		}
		// scikit-learn's target: 0 malignant, 1 benign.
		if f[30] == "0" {
			r.Y = 1
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// split returns the training rows of a dataset version and the held-out test rows.
func split(rows []Row, version string) (train, test []Row) {
	for i, r := range rows {
		switch {
		case i%5 == 0:
			test = append(test, r)
		case strings.HasPrefix(version, "shifted") && r.X[0] >= 13:
		default:
			train = append(train, r)
		}
	}
	return train, test
}

// Node is a tree node: a split (Feature, Threshold, Left, Right) or a leaf (Value).
type Node struct {
	Feature   int     `json:"f,omitempty"`
	Threshold float64 `json:"t,omitempty"`
	Left      *Node   `json:"l,omitempty"`
	Right     *Node   `json:"r,omitempty"`
	Value     float64 `json:"v,omitempty"`
	Leaf      bool    `json:"leaf,omitempty"`
}

func (n *Node) predict(x []float64) float64 {
	for !n.Leaf {
		if x[n.Feature] <= n.Threshold {
			n = n.Left
		} else {
			n = n.Right
		}
	}
	return n.Value
}

// Model is a boosted ensemble: the log-odds are Base + LearningRate * sum of the trees.
type Model struct {
	Kind         string         `json:"kind"`
	Base         float64        `json:"base"`
	LearningRate float64        `json:"learning_rate"`
	Trees        []*Node        `json:"trees"`
	Params       map[string]any `json:"params"`
	Dataset      string         `json:"dataset_version"`
}

func (m *Model) prob(x []float64) float64 {
	s := m.Base
	for _, t := range m.Trees {
		s += m.LearningRate * t.predict(x)
	}
	return 1 / (1 + math.Exp(-s))
}

type params struct {
	LearningRate float64
	MaxDepth     int
	Trees        int
	MinLeaf      int
}

func parseParams(raw string) (params, map[string]any, error) {
	p := params{LearningRate: 0.1, MaxDepth: 3, Trees: 50, MinLeaf: 3}
	m := map[string]any{}
	if strings.TrimSpace(raw) != "" {
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return p, nil, fmt.Errorf("CHAMPION_PARAMS is not a JSON object: %v", err)
		}
	}
	num := func(k string) (float64, bool, error) {
		v, ok := m[k]
		if !ok {
			return 0, false, nil
		}
		switch x := v.(type) {
		case float64:
			return x, true, nil
		case string:
			f, err := strconv.ParseFloat(x, 64)
			return f, err == nil, err
		}
		return 0, false, fmt.Errorf("parameter %s is %v, not a number", k, v)
	}
	if v, ok, err := num("learning_rate"); err != nil {
		return p, nil, err
	} else if ok {
		p.LearningRate = v
	}
	for _, k := range []struct {
		name string
		dst  *int
	}{{"max_depth", &p.MaxDepth}, {"n_estimators", &p.Trees}, {"min_leaf", &p.MinLeaf}} {
		if v, ok, err := num(k.name); err != nil {
			return p, nil, err
		} else if ok {
			*k.dst = int(v)
		}
	}
	if p.LearningRate <= 0 || p.MaxDepth < 1 || p.Trees < 1 || p.MinLeaf < 1 {
		return p, nil, fmt.Errorf("parameters out of range: %+v", p)
	}
	return p, m, nil
}

// grow builds a regression tree on gradients g and hessians h of the rows idx.
func grow(rows []Row, g, h []float64, idx []int, depth int, p params) *Node {
	var sg, sh float64
	for _, i := range idx {
		sg += g[i]
		sh += h[i]
	}
	leaf := &Node{Leaf: true, Value: sg / (sh + 1)}
	if depth >= p.MaxDepth || len(idx) < 2*p.MinLeaf {
		return leaf
	}
	gain := func(g, h float64) float64 { return g * g / (h + 1) }
	best, bestF, bestT := 0.0, -1, 0.0
	sorted := make([]int, len(idx))
	for f := 0; f < len(rows[0].X); f++ {
		copy(sorted, idx)
		sort.Slice(sorted, func(a, b int) bool { return rows[sorted[a]].X[f] < rows[sorted[b]].X[f] })
		var lg, lh float64
		for k := 0; k < len(sorted)-1; k++ {
			i := sorted[k]
			lg += g[i]
			lh += h[i]
			if k+1 < p.MinLeaf || len(sorted)-k-1 < p.MinLeaf {
				continue
			}
			a, b := rows[i].X[f], rows[sorted[k+1]].X[f]
			if a == b {
				continue
			}
			if v := gain(lg, lh) + gain(sg-lg, sh-lh) - gain(sg, sh); v > best {
				best, bestF, bestT = v, f, (a+b)/2
			}
		}
	}
	if bestF < 0 {
		return leaf
	}
	var left, right []int
	for _, i := range idx {
		if rows[i].X[bestF] <= bestT {
			left = append(left, i)
		} else {
			right = append(right, i)
		}
	}
	return &Node{Feature: bestF, Threshold: bestT, Left: grow(rows, g, h, left, depth+1, p), Right: grow(rows, g, h, right, depth+1, p)}
}

func train(rows []Row, p params) *Model {
	var pos float64
	for _, r := range rows {
		pos += r.Y
	}
	rate := math.Min(math.Max(pos/float64(len(rows)), 1e-3), 1-1e-3)
	m := &Model{Kind: "gbdt-logistic", Base: math.Log(rate / (1 - rate)), LearningRate: p.LearningRate}
	score := make([]float64, len(rows))
	for i := range score {
		score[i] = m.Base
	}
	g, h := make([]float64, len(rows)), make([]float64, len(rows))
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	for t := 0; t < p.Trees; t++ {
		for i, r := range rows {
			pr := 1 / (1 + math.Exp(-score[i]))
			g[i] = r.Y - pr
			h[i] = pr * (1 - pr)
		}
		tree := grow(rows, g, h, idx, 0, p)
		m.Trees = append(m.Trees, tree)
		for i, r := range rows {
			score[i] += p.LearningRate * tree.predict(r.X)
		}
	}
	return m
}

// scores are a model's metrics on rows; positive is malignant.
func scores(m *Model, rows []Row) map[string]float64 {
	var tp, fp, tn, fn, loss float64
	for _, r := range rows {
		pr := math.Min(math.Max(m.prob(r.X), 1e-12), 1-1e-12)
		loss -= r.Y*math.Log(pr) + (1-r.Y)*math.Log(1-pr)
		switch pred := pr >= 0.5; {
		case pred && r.Y == 1:
			tp++
		case pred:
			fp++
		case r.Y == 1:
			fn++
		default:
			tn++
		}
	}
	n := float64(len(rows))
	f1 := 0.0
	if tp > 0 {
		f1 = 2 * tp / (2*tp + fp + fn)
	}
	fpr := 0.0
	if fp+tn > 0 {
		fpr = fp / (fp + tn)
	}
	round := func(x float64) float64 { return math.Round(x*1e6) / 1e6 }
	return map[string]float64{"f1": round(f1), "accuracy": round((tp + tn) / n), "false_positive_rate": round(fpr), "log_loss": round(loss / n)}
}

// path maps a model location to a local folder: pvc://NAME/PATH is /mnt/NAME/PATH (KServe's convention:
// the volume NAME is mounted at /mnt/NAME), file://PATH and /PATH are themselves.
func path(uri string) (string, error) {
	switch {
	case strings.HasPrefix(uri, "pvc://"):
		rest := strings.TrimPrefix(uri, "pvc://")
		if name, p, ok := strings.Cut(rest, "/"); ok && name != "" {
			return filepath.Join("/mnt", name, p), nil
		}
		return "", fmt.Errorf("model location %q: want pvc://NAME/PATH", uri)
	case strings.HasPrefix(uri, "file://"):
		return strings.TrimPrefix(uri, "file://"), nil
	case strings.HasPrefix(uri, "/"):
		return uri, nil
	}
	return "", fmt.Errorf("model location %q: this example reads and writes pvc://NAME/PATH (a volume mounted at /mnt/NAME) or file:// locations only", uri)
}

func loadModel(uri string) (*Model, error) {
	p, err := path(uri)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(p, "model.json"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the model at %s: %v", uri, err)
	}
	var m Model
	if err := json.Unmarshal(b, &m); err != nil || len(m.Trees) == 0 {
		return nil, fmt.Errorf("the model at %s is not a model of this program: %v", uri, err)
	}
	return &m, nil
}

func saveModel(uri string, m *Model) error {
	p, err := path(uri)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return err
	}
	b, _ := json.Marshal(m)
	return os.WriteFile(filepath.Join(p, "model.json"), b, 0o644)
}

func terminationLog() string {
	if p := os.Getenv("TERMINATION_LOG"); p != "" {
		return p
	}
	return "/dev/termination-log"
}

// fail reports msg as the termination message and exits 1.
func fail(msg string) {
	log.Print(msg)
	_ = os.WriteFile(terminationLog(), []byte(msg), 0o644)
	os.Exit(1)
}

func report(v any) {
	b, _ := json.Marshal(v)
	if o := os.Getenv("REPORT_OVERRIDE"); o != "" {
		b = []byte(o)
	}
	fmt.Println(string(b))
	if err := os.WriteFile(terminationLog(), b, 0o644); err != nil {
		log.Fatalf("cannot write the report to %s: %v", terminationLog(), err)
	}
}

// logToMLflow logs metrics (and parameters) to the MLflow run of MLFLOW_RUN_ID on MLFLOW_TRACKING_URI, when
// both are set (a RetrainPolicy sets them when the operator config names a tracking server). A failure is
// logged and otherwise ignored: the termination message still carries the metrics.
func logToMLflow(metrics map[string]float64, params map[string]any) {
	uri, run := os.Getenv("MLFLOW_TRACKING_URI"), os.Getenv("MLFLOW_RUN_ID")
	if uri == "" || run == "" {
		return
	}
	now := time.Now().UnixMilli()
	ms, ps := []map[string]any{}, []map[string]any{}
	for k, v := range metrics {
		ms = append(ms, map[string]any{"key": k, "value": v, "timestamp": now, "step": 0})
	}
	for k, v := range params {
		ps = append(ps, map[string]any{"key": k, "value": fmt.Sprint(v)})
	}
	body, _ := json.Marshal(map[string]any{"run_id": run, "metrics": ms, "params": ps})
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(strings.TrimSuffix(uri, "/")+"/api/2.0/mlflow/runs/log-batch", "application/json", bytes.NewReader(body))
	if err != nil {
		log.Printf("could not log to MLflow: %v", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		log.Printf("could not log to MLflow: %s", resp.Status)
		return
	}
	log.Printf("logged %d metrics to MLflow run %s", len(ms), run)
}

func must(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fail(fmt.Sprintf("%s is not set (the Job contract requires it)", name))
	}
	return v
}

func main() {
	if msg := os.Getenv("FAIL_WITH"); msg != "" {
		fail(msg)
	}
	if s, err := strconv.ParseFloat(os.Getenv("TRAIN_SECONDS"), 64); err == nil && s > 0 {
		time.Sleep(time.Duration(s * float64(time.Second)))
	}
	if uri := must("DATASET_URI"); uri != "builtin:breast_cancer" {
		fail(fmt.Sprintf("DATASET_URI %q: this example knows builtin:breast_cancer only", uri))
	}
	rows, err := loadDataset()
	if err != nil {
		fail(err.Error())
	}
	version := os.Getenv("DATASET_VERSION")
	trainRows, test := split(rows, version)

	if candidate := os.Getenv("CANDIDATE_MODEL_URI"); candidate != "" {
		c, err := loadModel(candidate)
		if err != nil {
			fail("candidate: " + err.Error())
		}
		h, err := loadModel(must("CHAMPION_MODEL_URI"))
		if err != nil {
			fail("champion: " + err.Error())
		}
		report(map[string]any{"candidate": scores(c, test), "champion": scores(h, test)})
		return
	}

	p, raw, err := parseParams(os.Getenv("CHAMPION_PARAMS"))
	if err != nil {
		fail(err.Error())
	}
	var fit, val []Row
	for i, r := range trainRows {
		if i%10 == 0 {
			val = append(val, r)
		} else {
			fit = append(fit, r)
		}
	}
	start := time.Now()
	m := train(fit, p)
	m.Params, m.Dataset = raw, version
	if err := saveModel(must("MODEL_OUTPUT_URI"), m); err != nil {
		fail(err.Error())
	}
	s := scores(m, val)
	trial, _ := strconv.Atoi(os.Getenv("CHAMPION_TRIAL"))
	metrics := map[string]float64{
		"val_f1": s["f1"], "val_accuracy": s["accuracy"], "val_log_loss": s["log_loss"],
		"trees": float64(len(m.Trees)), "train_rows": float64(len(fit)), "trial": float64(trial),
		"train_seconds": math.Round(time.Since(start).Seconds()*1000) / 1000,
	}
	logToMLflow(metrics, raw)
	report(metrics)
}
