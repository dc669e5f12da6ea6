import ArgumentParser
import Autograd

@main
struct Ponder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ponder",
        abstract: "Train small language models to reason with GRPO, natively on CPUs.",
        subcommands: [Sample.self, TasksCommand.self, ScoreCommand.self, Bench.self, CurvesCommand.self, ReportCommand.self, RunsListCommand.self]
    )
}
