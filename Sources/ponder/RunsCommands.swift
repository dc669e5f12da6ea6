// `ponder curves`, `ponder report` and `ponder runs`: thin wrappers over the Runs library. They read run
// folders only, so they work on a run another process is still writing, and on a crashed one.

import ArgumentParser
import Foundation
import Runs

/// Where `RUN` arguments given as bare names are looked up.
struct RunsFolderOption: ParsableArguments {
    @Option(name: .customLong("runs-dir"), help: "The folder holding runs named without a path.")
    var runsDirectory = "runs"

    var url: URL { URL(fileURLWithPath: runsDirectory) }
}

/// Prints the warnings of a read (a skipped truncated last line) on standard error.
private func warn(_ warnings: [String]) {
    for warning in warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
}

struct CurvesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "curves",
        abstract: "Draw runs' metrics as line charts in the terminal or as SVG, several runs overlaid.",
        discussion: """
            By default: reward, each reward function's mean, eval/pass@1, kl and completions/mean_length. \
            SFT metrics are named sft/<metric> (e.g. sft/loss), as in TensorBoard.
            """
    )

    @Argument(help: "Run folders, or names of runs in --runs-dir.") var runs: [String]
    @Option(name: .customLong("metric"), help: "A metric to chart (repeatable), e.g. --metric kl --metric eval/pass@1.")
    var metrics: [String] = []
    @Option(help: "TensorBoard's smoothing weight, from 0 (none) to below 1.") var smooth = Curves.defaultSmoothing
    @Option(help: "Write the charts, stacked, to this SVG file instead of the terminal.") var svg: String?
    @Flag(help: "Plain ASCII without colour, even on a terminal.") var ascii = false
    @Option(help: "Chart width in columns.") var width = 72
    @Option(help: "Chart height in rows.") var height = 14
    @OptionGroup var folder: RunsFolderOption

    func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("name at least one run.") }
        guard (0..<1).contains(smooth) else { throw ValidationError("--smooth must be at least 0 and below 1, not \(smooth).") }
        try checkFlag(width, 20...1_000, "--width")
        try checkFlag(height, 2...1_000, "--height")
    }

    func run() throws {
        var tables: [(name: String, table: MetricsTable)] = []
        for name in runs {
            let reader = try RunReader.locate(name, runsDirectory: folder.url)
            let table = try reader.metrics()
            warn(table.warnings)
            tables.append((reader.name, table))
        }
        let names = try Curves.metrics(requested: metrics, in: tables.map(\.table))
        guard !names.isEmpty else { throw CommandFailure("\(runs.joined(separator: ", ")): no metrics logged yet") }
        let charts = Curves.charts(runs: tables, metrics: names, smoothing: smooth)
        if let svg {
            try SVGChart.write(charts, to: URL(fileURLWithPath: svg))
            print("wrote \(svg)")
            return
        }
        let fancy = !ascii && TerminalChart.isTTY()
        let color = fancy && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        let text = charts.map { chart in
            TerminalChart.render(chart.series, title: chart.title, width: width, height: height, unicode: fancy, color: color)
        }
        print(text.joined(separator: "\n"), terminator: "")
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write runs/<run>/report.html: curves, held-out eval table, sample completions and config in one file."
    )

    @Argument(help: ArgumentHelp("A run folder, or the name of a run in --runs-dir.", valueName: "run"))
    var runName: String
    @OptionGroup var folder: RunsFolderOption

    func run() throws {
        let reader = try RunReader.locate(runName, runsDirectory: folder.url)
        let (url, warnings) = try Report.write(reader)
        warn(warnings)
        print("wrote \(url.path)")
    }
}

struct RunsListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List runs with their status (running, finished, crashed, resumable), last step, reward and best eval."
    )

    @Argument(help: "The folder holding the runs.") var directory = "runs"

    func run() throws {
        let (runs, warnings) = try RunsTable.summaries(in: URL(fileURLWithPath: directory))
        warn(warnings)
        guard !runs.isEmpty else { return print("no runs in \(directory)") }
        print(RunsTable.render(runs), terminator: "")
    }
}
