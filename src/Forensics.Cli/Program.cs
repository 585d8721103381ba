using System.CommandLine;
using Forensics.Cli.Commands;

// forensics: the portal's ML library from the command line, for clusters and scripts.
var root = new RootCommand("forensics: dataset registration, alignment, LaRE extraction, detector training and evaluation for AI-generated image detection")
{
    ScanCommand.Create(),
    AlignCommand.Create(),
    LareCommand.Create(),
    TrainCommand.Create(),
    EvalCommand.Create(),
    MetricsCommand.Create(),
    BenchCommand.Create(),
    CrossGenCommand.Create(),
    SweepCommand.Create(),
    PhotosCommand.Create(),
    MiniGenImageCommand.Create(),
    TrainVaeCommand.Create(),
    TrainLdmCommand.Create(),
    TrainGanCommand.Create(),
    SampleCommand.Create(),
    PortalCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
