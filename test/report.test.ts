// The report's charts: round ticks labelled once each (a narrow range gets finer steps, not repeated labels), x ticks
// at epochs from 1, and a panel for each kind of series a History holds (learning rate, gradient norms, …).
import { describe, expect, it } from 'vitest';
import { historyPanels, historyReport, lineChart, niceTicks } from '../lib/report.js';

const labels = (svg: string, cls: string) => [...svg.matchAll(new RegExp(`class="${cls}"[^>]*>([^<]*)<`, 'g'))].map((m) => m[1]);

describe('report charts', () => {
  it('puts ticks on round numbers and never prints two alike', () => {
    expect(niceTicks(0, 1).decimals).toBe(1);
    expect(niceTicks(0, 1).values).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1].map((v) => expect.closeTo(v, 12)));
    expect(niceTicks(3, 97).values).toEqual([0, 20, 40, 60, 80, 100]);
    for (const [lo, hi] of [[0.9812, 0.9815], [1e-4, 3e-4], [12000, 12050], [-3, 7], [0.5, 0.5]]) {
      const svg = lineChart('t', [['a', [lo, (lo + hi) / 2, hi]]]);
      const ys = labels(svg, 'ytick');
      expect(ys.length).toBeGreaterThanOrEqual(3);
      expect(new Set(ys).size, `${lo}–${hi}: ${ys.join(' ')}`).toBe(ys.length);
    }
    expect(labels(lineChart('t', [['a', [0.9812, 0.9815]]]), 'ytick')).toEqual(['0.9812', '0.9813', '0.9814', '0.9815']);
  });

  it('labels the x axis at epochs from 1, at most about eight ticks', () => {
    expect(labels(lineChart('t', [['a', [3, 2, 1]]]), 'xtick')).toEqual(['1', '2', '3']);
    const many = labels(lineChart('t', [['a', Array.from({ length: 120 }, (_, i) => i)]]), 'xtick');
    expect(many[0]).toBe('20');
    expect(many.length).toBeLessThanOrEqual(8);
    expect(lineChart('t', [['a', [1, 2]]], { xLabel: 'step' })).toContain('>step</text>');
  });

  it('draws a panel for each kind of series: metrics, learning rate, gradient norms (log scale), throughput', () => {
    const history = {
      epoch: [0, 1, 2],
      history: {
        loss: [1, 0.5, 0.3], val_loss: [1.1, 0.6, 0.4], accuracy: [0.5, 0.8, 0.9], val_accuracy: [0.4, 0.7, 0.85], lr: [0.1, 0.05, 0.025],
        'grad_norm/0.weight': [1e-3, 5e-2, 2], 'grad_norm/0.bias': [1e-5, 1e-4, 1e-3], 'update_ratio/0.weight': [1e-3, 1e-3, 1e-3], samples_per_second: [900, 1000, 1100],
      },
    };
    const panels = historyPanels(history, { batchLoss: [2, 1.5, 1, 0.8] });
    const titles = panels.map((p) => /aria-label="([^"]*)"/.exec(p)![1]);
    expect(titles).toEqual(['Loss per batch', 'Loss', 'Accuracy', 'Learning rate', 'Gradient norm per parameter', 'Update / weight ratio per parameter', 'Throughput (samples/s)']);
    expect(panels[4]).toContain('(log scale)');
    expect(labels(panels[4], 'ytick')).toEqual(['1e-5', '1e-4', '1e-3', '1e-2', '1e-1', '1e0', '1e1']);
    const html = historyReport(history);
    expect(html).toContain('data-series="0.weight"');
    expect(html).toMatch(/<td>lr<\/td><td>0\.025000<\/td>/);
  });
});
