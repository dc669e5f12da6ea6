// Which curves to draw and how to smooth them, shared by `ponder curves` (terminal and SVG) and the
// HTML report.

import Foundation

/// One chart: a metric, with one line per run.
public struct Chart {
    /// The metric tag, used as the title.
    public var title: String
    /// One smoothed line per run, in run order (so a run keeps its colour across charts).
    public var series: [ChartSeries]
    /// The same lines unsmoothed, drawn faintly behind the smoothed ones in SVG.
    public var raw: [ChartSeries]

    /// A chart of the given lines; `raw` defaults to the lines themselves (nothing smoothed).
    public init(title: String, series: [ChartSeries], raw: [ChartSeries]? = nil) {
        self.title = title
        self.series = series
        self.raw = raw ?? series
    }
}

/// Choosing, smoothing and assembling curves from runs' metrics.
public enum Curves {
    /// The smoothing `ponder curves` uses unless told otherwise: TensorBoard's default.
    public static let defaultSmoothing = 0.6

    /// TensorBoard's debiased exponential moving average: each value is the EMA so far divided by
    /// (1 − weightⁿ), so the first values are not pulled towards zero. Non-finite values pass through
    /// unsmoothed, and a constant series is left as it is (as TensorBoard does).
    public static func smooth(_ values: [Double], weight: Double) -> [Double] {
        guard weight > 0, let first = values.first, !values.allSatisfy({ $0 == first }) else { return values }
        var last = 0.0
        var count = 0.0
        return values.map { value in
            guard value.isFinite else { return value }
            last = last * weight + (1 - weight) * value
            count += 1
            return last / (1 - pow(weight, count))
        }
    }

    /// The default charts: reward, each reward function's mean, held-out pass@1, KL and mean completion
    /// length, those that any of the tables hold; the SFT loss when none of them is there (an SFT-only run).
    public static func defaultMetrics(_ tables: [MetricsTable]) -> [String] {
        let tags = Set(tables.flatMap(\.tags))
        let perFunction = tags.filter { $0.hasPrefix("rewards/") && $0.hasSuffix("/mean") }.sorted()
        let wanted = ["reward"] + perFunction + ["eval/pass@1", "kl", "completions/mean_length"]
        let present = wanted.filter(tags.contains)
        return present.isEmpty ? ["sft/loss"].filter(tags.contains) : present
    }

    /// The metrics to chart: `requested`, or the defaults when it is empty. A requested metric that no
    /// table holds is `RunsError.unknownMetric`, listing the metrics there are.
    public static func metrics(requested: [String], in tables: [MetricsTable]) throws -> [String] {
        guard !requested.isEmpty else { return defaultMetrics(tables) }
        let tags = Set(tables.flatMap(\.tags))
        for name in requested where !tags.contains(name) {
            throw RunsError.unknownMetric(name: name, available: tags.sorted())
        }
        return requested
    }

    /// One chart per metric, one line per run. Held-out eval metrics ("eval/…") are not smoothed: they are
    /// sparse, and each point is already an average over the whole held-out set.
    public static func charts(runs: [(name: String, table: MetricsTable)], metrics: [String], smoothing: Double) -> [Chart] {
        metrics.map { metric in
            let raw = runs.map { ChartSeries(name: $0.name, points: $0.table.points(metric)) }
            let weight = metric.hasPrefix("eval/") ? 0 : smoothing
            let smoothed = raw.map { line in
                let ys = smooth(line.points.map(\.y), weight: weight)
                return ChartSeries(name: line.name, points: zip(line.points, ys).map { ($0.x, $1) })
            }
            return Chart(title: metric, series: smoothed, raw: raw)
        }
    }
}
