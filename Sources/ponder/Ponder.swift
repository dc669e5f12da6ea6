import ArgumentParser
import Autograd

@main
struct Ponder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ponder",
        abstract: "Train small language models to reason with GRPO, natively on CPUs.",
        subcommands: [
            Train.self, DistillCommand.self, EvalCommand.self, Sample.self, CurvesCommand.self, ReportCommand.self, RunsListCommand.self,
            TasksCommand.self, ScoreCommand.self, MergeCommand.self, Bench.self,
        ]
    )

    static func main() {
        BufferPool.keepFreedMemory()
        main(nil)
    }
}
