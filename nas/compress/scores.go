package compress

import (
	"context"
	"fmt"
	"slices"

	"hwnas/accel"
	"hwnas/nas"
	"hwnas/nas/data"
)

// slimmingLambda is the L1 penalty on batch-norm γ used before pruning
// by the "bn" criterion (network slimming uses 1e-4 to 1e-5).
const slimmingLambda = 1e-4

// channelScores ranks the output channels of the named layers (which the
// recipe prunes by channels) with each layer's criterion:
//
//   - l1: the L1 norm of each filter;
//   - bn: |γ| of the batch norm reading the layer, after FineTuneEpochs of
//     training with the slimming penalty λ·Σ|γ| on those batch norms;
//   - taylor: |Σ_i w_i·∂L/∂w_i| over each filter's weights and bias
//     (first-order Taylor estimate of the loss change when the filter is
//     removed), averaged over the batches of CalibSamples training images.
func channelScores(ctx context.Context, m *nas.Model, layers []string, r *Recipe, train *data.Set, tc nas.TrainConfig, cfg Config) (map[string][]float64, error) {
	scores := map[string][]float64{}
	bnOf := map[string]*nas.Param{}
	var taylor []string
	for _, nd := range weightNodes(m) {
		name := nd.Layer.Name
		c := r.For(name)
		if !slices.Contains(layers, name) {
			continue
		}
		w := m.Param(name + ".w")
		switch ChannelCriterion(c.Criterion) {
		case "", CriterionL1:
			s, err := FilterL1(w.Data, w.Shape[0])
			if err != nil {
				return nil, err
			}
			scores[name] = s
		case CriterionBN:
			var gamma *nas.Param
			for _, ci := range m.Graph.Consumers[nd.Out[0]] {
				if bn := m.Graph.Nodes[ci]; bn.Kind == nas.TypeBatchNorm {
					gamma = m.Param(bn.Layer.Name + ".gamma")
				}
			}
			if gamma == nil || nd.Act != accel.ActNone {
				return nil, fmt.Errorf("layer %q: the bn criterion needs a batch norm reading the layer's output directly", name)
			}
			bnOf[name] = gamma
		case CriterionTaylor:
			taylor = append(taylor, name)
		}
	}
	if len(bnOf) > 0 {
		if !cfg.NoFineTune {
			c := tc
			c.GradHook = func(*nas.Model) error {
				for _, g := range bnOf {
					SlimmingPenalty(g.Data, g.Grad, slimmingLambda)
				}
				return nil
			}
			if _, err := nas.Train(ctx, m, train, nil, c, nil); err != nil {
				return nil, fmt.Errorf("network slimming: %w", err)
			}
		}
		for name, g := range bnOf {
			scores[name] = BNScores(g.Data)
		}
	}
	if len(taylor) > 0 {
		acc := map[string][]float64{}
		batches := 0
		c := tc
		c.Epochs, c.Subset = 1, cfg.CalibSamples
		// A vanishing step: the pass only collects gradients.
		c.LR, c.NoMomentum, c.NoDecay, c.ConstantLR, c.WarmupSteps = 1e-12, true, true, true, 1
		c.GradHook = func(mm *nas.Model) error {
			batches++
			for _, name := range taylor {
				w, b := mm.Param(name+".w"), mm.Param(name+".b")
				rows := w.Shape[0]
				per := len(w.Data) / rows
				if acc[name] == nil {
					acc[name] = make([]float64, rows)
				}
				for o := 0; o < rows; o++ {
					s := 0.0
					for i := o * per; i < (o+1)*per; i++ {
						s += float64(w.Data[i]) * float64(w.Grad[i])
					}
					if b != nil {
						s += float64(b.Data[o]) * float64(b.Grad[o])
					}
					if s < 0 {
						s = -s
					}
					acc[name][o] += s
				}
			}
			return nil
		}
		if _, err := nas.Train(ctx, m, train, nil, c, nil); err != nil {
			return nil, fmt.Errorf("taylor scores: %w", err)
		}
		for name, s := range acc {
			for i := range s {
				s[i] /= float64(max(batches, 1))
			}
			scores[name] = s
		}
	}
	return scores, nil
}

// DistillLossFunc loads the teacher of spec (its architecture, or the
// student's) and returns the training loss α·T²·KL + (1−α)·CE against it,
// the teacher run on every batch with kernels k (nas.TrainConfig.Loss).
func DistillLossFunc(spec *DistillSpec, student *nas.Model, k accel.Kernels) (nas.LossFunc, error) {
	a := student.Arch.Clone()
	if spec.TeacherArch != "" {
		// A built-in teacher is built for the student's input, classes
		// and normalisation; a file is taken as it is.
		var err error
		s := nas.DataShape{Input: a.Input, Classes: a.Classes, Normalize: a.Normalize}
		if a, err = nas.ResolveArchFor(spec.TeacherArch, s); err != nil {
			return nil, fmt.Errorf("distill: %w", err)
		}
	}
	if a.Classes != student.Arch.Classes {
		return nil, fmt.Errorf("distill: teacher %q has %d classes, student %d", a.Name, a.Classes, student.Arch.Classes)
	}
	teacher, err := nas.NewModel(a, 0)
	if err != nil {
		return nil, err
	}
	if err := nas.LoadWeights(spec.Teacher, teacher); err != nil {
		return nil, fmt.Errorf("distill: teacher: %w", err)
	}
	teacher.Kernels = k
	return func(b nas.Batch, logits, dlogits []float32) (float32, error) {
		t, err := teacher.Forward(b.X, b.N)
		if err != nil {
			return 0, err
		}
		l, err := DistillLoss(b.N, a.Classes, logits, t, b.Labels, spec.T, spec.Alpha, dlogits)
		return float32(l), err
	}, nil
}
