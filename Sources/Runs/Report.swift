// runs/<run>/report.html: one self-contained page (no scripts, no network fetches) for looking at a run
// without any other software: status, curves as inline SVG, the held-out eval table from first to last
// eval, a browsable sample of completions, and the resolved config.

import Foundation

/// The HTML report of a run.
public enum Report {
    /// Steps of completions shown, spread evenly from the first to the last.
    public static let sampledSteps = 12
    /// Completions shown per step.
    public static let completionsPerStep = 8

    /// Writes runs/<run>/report.html atomically and returns its URL. The trainer calls it at each checkpoint.
    @discardableResult
    public static func write(runDirectory: URL) throws -> URL {
        try write(RunReader(runDirectory: runDirectory)).url
    }

    /// Writes the run's report.html atomically; returns its URL and the warnings met reading the run.
    public static func write(_ run: RunReader) throws -> (url: URL, warnings: [String]) {
        let (page, warnings) = try html(for: run)
        let url = run.runDirectory.appendingPathComponent("report.html")
        try AtomicWrite.write(Data(page.utf8), to: url)
        return (url, warnings)
    }

    /// The page and the warnings met while reading the run (a truncated last line, for instance).
    public static func html(for run: RunReader) throws -> (page: String, warnings: [String]) {
        let metrics = try run.metrics()
        let (completions, completionWarnings) = try run.completions()
        let name = SVGChart.escape(run.name)
        var out = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>\(name): Ponder run report</title>
            <style>\(style)</style>
            </head>
            <body>
            <h1>\(name)</h1>

            """
        out += summary(run, metrics)
        var metricNames = Curves.defaultMetrics([metrics])
        if metrics.tags.contains("sft/loss") && !metricNames.contains("sft/loss") { metricNames.append("sft/loss") }
        let charts = Curves.charts(runs: [(run.name, metrics)], metrics: metricNames, smoothing: Curves.defaultSmoothing)
        out += "<h2>Curves</h2>\n"
        out += charts.isEmpty
            ? "<p class=\"note\">No metrics yet.</p>\n"
            : "<p class=\"note\">Smoothed as TensorBoard smooths (weight \(Curves.defaultSmoothing)); raw values faint behind. Eval metrics are not smoothed.</p>\n"
                + SVGChart.render(charts, standalone: false)
        out += evalSection(metrics)
        out += completionsSection(completions)
        out += "<h2>Config</h2>\n"
        out += run.config().map { "<pre class=\"config\">\(SVGChart.escape($0))</pre>\n" }
            ?? "<p class=\"note\">This run has no config.yaml.</p>\n"
        out += "</body>\n</html>\n"
        return (out, metrics.warnings + completionWarnings)
    }

    private static func summary(_ run: RunReader, _ metrics: MetricsTable) -> String {
        var facts: [(String, String)] = [("state", run.state().rawValue)]
        if let status = run.status() {
            facts.append(("step", "\(status.step) / \(status.totalSteps) (\(status.stage))"))
            facts.append(("updated", status.updated))
            if let message = status.message { facts.append(("message", message)) }
        } else if let last = metrics.rows.last {
            facts.append(("step", "\(last.step) (\(last.stage))"))
        }
        if let reward = metrics.last("reward") { facts.append(("last reward", "\(number(reward.value)) at step \(reward.step)")) }
        if let best = metrics.points("eval/pass@1").max(by: { $0.y < $1.y }) {
            facts.append(("best eval pass@1", "\(number(best.y)) at step \(Int(best.x))"))
        }
        let rows = facts.map { "<tr><th>\(SVGChart.escape($0.0))</th><td>\(SVGChart.escape($0.1))</td></tr>" }
        return "<table class=\"facts\">\n" + rows.joined(separator: "\n") + "\n</table>\n"
    }

    // MARK: - Eval table

    private static func evalSection(_ metrics: MetricsTable) -> String {
        let rows = metrics.rows.filter { row in row.values.keys.contains { $0.hasPrefix("eval/") } }
        guard let first = rows.first, let last = rows.last else {
            return "<h2>Held-out eval</h2>\n<p class=\"note\">No eval yet.</p>\n"
        }
        var out = "<h2>Held-out eval</h2>\n<table class=\"eval\">\n"
        out += "<tr><th>scope</th><th>metric</th><th>first (step \(first.step))</th><th>last (step \(last.step))</th><th>change</th></tr>\n"
        let keys = Set(first.values.keys).union(last.values.keys).filter { $0.hasPrefix("eval/") }
        for key in keys.sorted(by: { EvalKey($0) < EvalKey($1) }) {
            let parsed = EvalKey(key)
            let a = first.values[key]
            let b = last.values[key]
            let change = a.flatMap { a in b.map { $0 - a } }
            let changeClass = change.map { $0 > 0 ? "up" : $0 < 0 ? "down" : "" } ?? ""
            out += "<tr class=\"\(parsed.family == nil ? "overall" : parsed.level == nil ? "family" : "level")\">"
            out += "<td>\(SVGChart.escape(parsed.scope))</td><td>\(SVGChart.escape(parsed.metric))</td>"
            out += "<td>\(a.map(number) ?? "–")</td><td>\(b.map(number) ?? "–")</td>"
            out += "<td class=\"\(changeClass)\">\(change.map { ($0 > 0 ? "+" : "") + number($0) } ?? "–")</td></tr>\n"
        }
        return out + "</table>\n"
    }

    /// An eval key split into scope and metric: eval/<metric>, eval/<family>/<metric> or
    /// eval/<family>/L<level>/<metric>. Sorted overall first (headline metrics in a fixed order), then by
    /// family, then by level.
    private struct EvalKey: Comparable {
        var family: String?
        var level: Int?
        var metric: String

        init(_ key: String) {
            let parts = key.dropFirst("eval/".count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            metric = parts.last ?? key
            if parts.count >= 2 { family = parts[0] }
            if parts.count >= 3, parts[1].hasPrefix("L") { level = Int(parts[1].dropFirst()) }
            if parts.count >= 3, level == nil { metric = parts.dropFirst().joined(separator: "/") }
        }

        var scope: String {
            guard let family else { return "overall" }
            return level.map { "\(family) L\($0)" } ?? family
        }

        private static let headline = ["pass@1", "pass@k", "maj@k", "format", "mean_length"]

        private var order: (Int, String, Int, Int, String) {
            let rank = EvalKey.headline.firstIndex(of: metric) ?? EvalKey.headline.count
            return (family == nil ? 0 : 1, family ?? "", level ?? -1, rank, metric)
        }

        static func < (lhs: EvalKey, rhs: EvalKey) -> Bool { lhs.order < rhs.order }
    }

    // MARK: - Completions

    private static func completionsSection(_ records: [CompletionRecord]) -> String {
        var out = "<h2>Sample completions</h2>\n"
        let byStep = Dictionary(grouping: records, by: \.step)
        let steps = byStep.keys.sorted()
        guard !steps.isEmpty else { return out + "<p class=\"note\">No completions logged yet.</p>\n" }
        let shown = steps.count <= sampledSteps
            ? steps
            : (0..<sampledSteps).map { steps[$0 * (steps.count - 1) / (sampledSteps - 1)] }
        out += "<p class=\"note\">\(shown.count) of \(steps.count) logged steps, up to \(completionsPerStep) completions each. "
        out += "<span class=\"wrong-key\">Red</span>: wrong answer; <span class=\"format-key\">amber</span>: bad format.</p>\n"
        for step in shown {
            let group = byStep[step]!
            let correct = group.filter { $0.rewards["correctness"].map { $0 > 0 } ?? false }.count
            let meanReward = group.map(\.reward).reduce(0, +) / Double(group.count)
            out += "<details\(step == shown.last ? " open" : "")><summary>step \(step): mean reward \(number(meanReward))"
            if group.contains(where: { $0.rewards["correctness"] != nil }) { out += ", \(correct)/\(group.count) correct" }
            out += "</summary>\n"
            for record in group.prefix(completionsPerStep) { out += card(record) }
            out += "</details>\n"
        }
        return out
    }

    private static func card(_ record: CompletionRecord) -> String {
        let wrong = record.rewards["correctness"] == 0
        let badFormat = record.rewards["format"] == 0
        let classes = ["completion"] + (wrong ? ["wrong"] : []) + (badFormat ? ["bad-format"] : [])
        var out = "<div class=\"\(classes.joined(separator: " "))\">\n<div class=\"meta\">"
        out += "<span>\(SVGChart.escape(record.family)) L\(record.level)</span>"
        out += "<span>answer <code>\(SVGChart.escape(record.answer))</code></span>"
        for (name, value) in record.rewards.sorted(by: { $0.key < $1.key }) {
            let zero = value == 0 && (name == "correctness" || name == "format")
            out += "<span\(zero ? " class=\"zero\"" : "")>\(SVGChart.escape(name)) \(number(value))</span>"
        }
        out += "<span>reward \(number(record.reward))</span><span>advantage \(number(record.advantage))</span></div>\n"
        out += "<pre><span class=\"prompt\">\(SVGChart.escape(record.prompt))</span>\(SVGChart.escape(record.completion))</pre>\n</div>\n"
        return out
    }

    /// A number for people: up to four decimals, trailing zeros dropped.
    private static func number(_ value: Double) -> String {
        guard value.isFinite else { return "–" }
        var text = String(format: "%.4f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text == "-0" ? "0" : text
    }

    private static let style = """
        body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:760px;color:#222;padding:0 1em}
        h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
        table{border-collapse:collapse;font-size:14px}th,td{padding:3px 10px;text-align:left}
        table.eval td:nth-child(n+3),table.eval th:nth-child(n+3){text-align:right}
        table.eval tr.overall td{font-weight:bold}table.eval tr.level td:first-child{padding-left:2em}
        table.eval tr{border-bottom:1px solid #eee}td.up{color:#2ca02c}td.down{color:#d62728}
        .note{color:#666;font-size:13px}pre{white-space:pre-wrap;margin:.4em 0;font-size:13px}
        pre.config{background:#f6f6f6;padding:.8em}details{margin:.4em 0}summary{cursor:pointer}
        .completion{border-left:4px solid #2ca02c;padding:.2em .6em;margin:.5em 0;background:#fafafa}
        .completion.bad-format{border-left-color:#ff7f0e;background:#fff7ec}
        .completion.wrong{border-left-color:#d62728;background:#fdf0f0}
        .meta span{margin-right:1em;font-size:12px;color:#555}.meta span.zero{color:#d62728;font-weight:bold}
        .prompt{color:#1f77b4}.wrong-key{color:#d62728}.format-key{color:#ff7f0e}
        """
}
