import ArgumentParser

@main
struct Burrow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "burrow",
        abstract: "A BitTorrent client that never leaves the tunnel.",
        version: "0.1.0",
        subcommands: [Download.self, Info.self, FirewallCommand.self, Doctor.self])
}
