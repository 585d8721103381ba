using System.Diagnostics;
using System.Text.Json;
using Forensics.ML.Data;
using Forensics.ML.Datasets;
using Forensics.ML.Detectors;
using Forensics.ML.Evaluation;
using Forensics.ML.Imaging;
using Forensics.ML.Tests.Datasets;
using Forensics.ML.Tests.Evaluation;
using Forensics.Testing;
using static Forensics.ML.Tests.Datasets.DatasetFixtures;

namespace Forensics.ML.Tests.Hostile;

/// <summary>Folders that many people can write to: links out of the roots, FIFOs, devices, decompression bombs, huge files.</summary>
public class HostileScanTests
{
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    // A scan that hangs (a FIFO read before the fix) fails the test instead of hanging the suite.
    static DatasetManifest ScanWithin(string root, ScanOptions? options = null)
    {
        var scan = Task.Run(() => DatasetScanner.Scan(root, options));
        Assert.True(scan.Wait(Patience), $"the scan of {root} did not finish within {Patience.TotalSeconds} s");
        return scan.Result;
    }

    static Dictionary<string, string> Reasons(DatasetManifest m) => m.Unreadable.ToDictionary(u => u.Path, u => u.Reason);

    [Fact]
    public void Links_out_of_the_allowed_roots_are_unreadable_and_folders_behind_them_are_not_walked()
    {
        using var dir = new TempDir();
        using var elsewhere = new TempDir();
        var root = dir["ds"];
        Write(root, "0_real/a.png", Png(8, 8, 1));
        Write(root, "1_fake/b.png", Png(8, 8, 2));
        Write(elsewhere.Path, "outside.png", Png(8, 8, 3));
        File.CreateSymbolicLink(dir["ds/0_real/x.png"], elsewhere["outside.png"]);
        File.CreateSymbolicLink(dir["ds/0_real/passwd.png"], "/etc/passwd");
        Directory.CreateSymbolicLink(dir["ds/0_real/etcdir"], "/etc");
        File.CreateSymbolicLink(dir["ds/1_fake/same.png"], dir["ds/0_real/a.png"]); // inside the root: fine

        var m = ScanWithin(root);
        Assert.Equal(new Dictionary<string, string>
        {
            ["0_real/etcdir/"] = ConfinedFile.OutsideRoots,
            ["0_real/passwd.png"] = ConfinedFile.OutsideRoots,
            ["0_real/x.png"] = ConfinedFile.OutsideRoots,
        }, Reasons(m));
        Assert.Equal(["0_real/a.png", "1_fake/b.png", "1_fake/same.png"], m.Images.Select(i => i.Path));
        Assert.DoesNotContain(m.Unreadable, u => u.Path.StartsWith("0_real/etcdir/", StringComparison.Ordinal) && u.Path.Length > "0_real/etcdir/".Length);

        // A root the caller allows: the link into it is read; /etc stays out.
        var widened = ScanWithin(root, new ScanOptions { AllowedRoots = [root, elsewhere.Path] });
        Assert.Contains("0_real/x.png", widened.Images.Select(i => i.Path));
        Assert.Equal(["0_real/etcdir/", "0_real/passwd.png"], widened.Unreadable.Select(u => u.Path));

        // An earlier scan's entry is not trusted once the path leads outside.
        File.Delete(dir["ds/1_fake/b.png"]);
        var before = ScanWithin(root, new ScanOptions { AllowedRoots = [root, elsewhere.Path] });
        var again = ScanWithin(root, new ScanOptions { Cache = before.AsCache() });
        Assert.Equal(ConfinedFile.OutsideRoots, Reasons(again)["0_real/x.png"]);
    }

    [Fact]
    public void A_link_to_a_folder_outside_is_not_listed_by_the_layout_detection()
    {
        using var dir = new TempDir();
        using var elsewhere = new TempDir();
        Write(elsewhere.Path, "0_real/r.png", Png(4, 4, 1));
        Write(elsewhere.Path, "1_fake/f.png", Png(4, 4, 2));
        var root = dir["ds"];
        Write(root, "train/0_real/r.png", Png(4, 4, 3));
        Write(root, "train/1_fake/f.png", Png(4, 4, 4));
        Directory.CreateSymbolicLink(dir["ds/linked"], elsewhere.Path); // would be a split "linked" with its own 0_real/1_fake

        var m = ScanWithin(root);
        Assert.Equal(["train/0_real/r.png", "train/1_fake/f.png"], m.Images.Select(i => i.Path));
        Assert.Empty(m.Unreadable);
        Assert.DoesNotContain(m.Subsets, s => s.Split == "linked");
        Assert.Contains(DatasetLayouts.Resolve(root).Parts, p => p.Split == "linked"); // unconfined, it would be
    }

    [Fact]
    public void Fifos_devices_and_sockets_are_not_regular_files_and_never_block_the_scan()
    {
        using var dir = new TempDir();
        var root = dir["ds"];
        Write(root, "0_real/a.png", Png(8, 8, 1));
        Write(root, "1_fake/b.png", Png(8, 8, 2));
        HostileFiles.MakeFifo(dir["ds/0_real/pipe.png"]);
        File.CreateSymbolicLink(dir["ds/0_real/zero.png"], "/dev/zero");
        using var socket = HostileFiles.BindSocket(dir["ds/1_fake/sock.png"]);

        // /dev/zero lies outside the root: it is refused for that, before anything looks at it.
        Assert.Equal(new Dictionary<string, string>
        {
            ["0_real/pipe.png"] = "not a regular file (fifo)",
            ["0_real/zero.png"] = ConfinedFile.OutsideRoots,
            ["1_fake/sock.png"] = "not a regular file (socket)",
        }, Reasons(ScanWithin(root)));

        // With /dev allowed, the device is still never read.
        var m = ScanWithin(root, new ScanOptions { AllowedRoots = [root, "/dev"] });
        Assert.Equal("not a regular file (character device)", Reasons(m)["0_real/zero.png"]);
        Assert.Equal(2, m.ImageCount);
    }

    [Fact]
    public async Task A_scan_with_a_fifo_is_canceled_promptly()
    {
        using var dir = new TempDir();
        var root = dir["ds"];
        HostileFiles.MakeFifo(dir["ds/0_real/0000_pipe.png"]);
        for (var i = 0; i < 40; i++) Write(root, $"0_real/r{i:D3}.png", Png(16, 16, i));
        Write(root, "1_fake/f.png", Png(16, 16, 99));

        using var cts = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        // Canceled when the first file finishes: the FIFO (first in order) is in flight or done by then.
        var scan = Task.Run(() => DatasetScanner.Scan(root, new ScanOptions
        {
            Parallelism = 2, CheckpointEvery = 1, OnCheckpoint = _ => cts.Cancel(),
        }, cts.Token));
        Assert.True(await Task.WhenAny(scan, Task.Delay(TimeSpan.FromSeconds(20))) == scan, "the canceled scan did not stop within 20 s");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => scan);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{clock.Elapsed}");
    }

    [Theory]
    [InlineData("png", 20000, 20000)]
    [InlineData("png", 16000, 23000)]
    [InlineData("jpeg", 60000, 60000)]
    [InlineData("webp", 16000, 16000)]
    public void A_header_claiming_more_pixels_than_the_limit_is_unreadable_without_decoding(string format, int width, int height)
    {
        using var dir = new TempDir();
        var root = dir["ds"];
        var bomb = format switch
        {
            "png" => HostileFiles.PngClaiming(width, height),
            "jpeg" => HostileFiles.JpegClaiming(width, height),
            _ => HostileFiles.WebpClaiming(width, height),
        };
        Assert.True(bomb.Length < 1000, $"{bomb.Length} bytes");
        Write(root, $"0_real/bomb.{format}", bomb);
        Write(root, "1_fake/ok.png", Png(8, 8, 1));

        var m = ScanWithin(root);
        Assert.Equal($"image too large ({width} x {height}; the limit is {ImageLimits.DefaultMaxPixels} pixels)", Reasons(m)[$"0_real/bomb.{format}"]);
        Assert.Equal(1, m.ImageCount);
        Assert.Equal((format, width, height), ImageHeader.Read(new MemoryStream(bomb)));
    }

    [Fact]
    public void The_pixel_limit_is_configurable_and_the_decoder_keeps_it_too()
    {
        using var dir = new TempDir();
        var root = dir["ds"];
        Write(root, "0_real/small.png", Png(8, 8, 1));
        Write(root, "1_fake/wide.jpg", Jpeg(16, 8, 2));
        var m = ScanWithin(root, new ScanOptions { Limits = new ImageLimits { MaxPixels = 100 } });
        Assert.Equal("image too large (16 x 8; the limit is 100 pixels)", Reasons(m)["1_fake/wide.jpg"]);
        Assert.Equal(["0_real/small.png"], m.Images.Select(i => i.Path));

        Write(root, "0_real/bomb.png", HostileFiles.PngClaiming(20000, 20000));
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(dir["ds/0_real/bomb.png"]));
        Assert.StartsWith("image too large (20000 x 20000", e.Reason);
        Assert.Equal(dir["ds/0_real/bomb.png"], e.ImagePath);
        Assert.StartsWith("image too large (16 x 8",
            Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(dir["ds/1_fake/wide.jpg"], new ImageLimits { MaxPixels = 100 })).Reason);
        File.CreateSymbolicLink(dir["zero.png"], "/dev/zero");
        Assert.Equal("not a regular file (character device)", Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(dir["zero.png"])).Reason);
    }

    [Fact]
    public void A_file_over_the_size_limit_is_not_read_and_is_named_with_its_size()
    {
        using var dir = new TempDir();
        var root = dir["ds"];
        Write(root, "1_fake/ok.png", Png(8, 8, 1));
        // 1 GiB on paper (sparse): a slurp would take a gigabyte.
        HostileFiles.Sparse(dir["ds/0_real/huge.png"], Png(8, 8, 2), 1L << 30);
        var m = ScanWithin(root);
        Assert.Equal($"file too large ({1L << 30} bytes; the limit is {ImageLimits.DefaultMaxFileBytes} bytes)", Reasons(m)["0_real/huge.png"]);
        var small = ScanWithin(root, new ScanOptions { Limits = new ImageLimits { MaxFileBytes = 10 } });
        Assert.StartsWith("file too large (", Reasons(small)["1_fake/ok.png"]);
    }

    [Fact]
    public async Task Scanning_a_folder_of_bombs_links_to_devices_and_huge_files_stays_under_1_GB_of_process_memory()
    {
        using var dir = new TempDir();
        var root = dir["ds"];
        Write(root, "0_real/a.png", Png(64, 64, 1));
        Write(root, "1_fake/b.jpg", Jpeg(64, 64, 2));
        Write(root, "0_real/bomb1.png", HostileFiles.PngClaiming(16000, 16000));
        Write(root, "0_real/bomb2.png", HostileFiles.PngClaiming(20000, 20000));
        Write(root, "1_fake/bomb3.png", HostileFiles.PngClaiming(23000, 23000));
        Write(root, "1_fake/bomb4.png", HostileFiles.PngClaiming(18000, 21000));
        File.CreateSymbolicLink(dir["ds/0_real/zero.png"], "/dev/zero");
        HostileFiles.MakeFifo(dir["ds/1_fake/pipe.png"]);
        HostileFiles.Sparse(dir["ds/1_fake/huge.png"], Png(8, 8, 3), 4L << 30);

        // A real process, `forensics scan`, with /dev allowed so the device is looked at (and refused) as a file.
        var cli = Path.Combine(AppContext.BaseDirectory, "forensics.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { cli, "scan", root, "--json", "--peak-memory", "--allow-root", "/dev", "--parallelism", "4" }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using (var limit = new CancellationTokenSource(TimeSpan.FromSeconds(120)))
        {
            try { await process.WaitForExitAsync(limit.Token); }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail("forensics scan did not finish within 120 s");
            }
        }
        var (output, errors) = (await stdout, await stderr);
        Assert.True(process.ExitCode == 0, errors);
        var summary = JsonDocument.Parse(output).RootElement;
        var reasons = summary.GetProperty("unreadable").EnumerateArray()
            .ToDictionary(u => u.GetProperty("path").GetString()!, u => u.GetProperty("reason").GetString()!);
        Assert.StartsWith("image too large (23000 x 23000", reasons["1_fake/bomb3.png"]);
        Assert.Equal("not a regular file (character device)", reasons["0_real/zero.png"]);
        Assert.Equal("not a regular file (fifo)", reasons["1_fake/pipe.png"]);
        Assert.StartsWith("file too large (4294967296 bytes", reasons["1_fake/huge.png"]);
        var peak = HostileFiles.PeakMiB(errors);
        Assert.True(peak is > 0 and < 1024, $"peak resident memory {peak} MiB; stderr: {errors}");
    }

    [Fact]
    public void An_evaluation_refuses_images_over_its_pixel_limit_by_name_and_records_the_policy()
    {
        EvalFixtures.EnsureTorch();
        using var dir = new TempDir();
        var root = dir["ds"];
        Write(root, "0_real/r1.png", Png(16, 16, 1));
        Write(root, "0_real/big.png", Png(40, 30, 2));
        Write(root, "1_fake/f1.png", Png(16, 16, 3));
        Write(root, "1_fake/f2.png", Png(16, 16, 4));
        var set = EvaluationSet.Scan(root);
        using var detector = DetectorCheckpoint.Load(EvalFixtures.Checkpoint);
        var options = new EvalOptions { MaxPixels = 1000, Workers = 1 };
        var result = DetectorEvaluator.Score(detector, set.Images, options);

        Assert.Equal(["0_real/r1.png", "1_fake/f1.png", "1_fake/f2.png"], result.Scores.Select(s => s.RelativePath).Order(StringComparer.Ordinal));
        var refused = Assert.Single(result.Skipped);
        Assert.Equal(("0_real/big.png", "image too large (40 x 30; the limit is 1000 pixels), refused by the evaluation's policy"), (refused.RelativePath, refused.Reason));
        var json = EvaluationReport.Create(detector, set, result, options, new Forensics.ML.Metrics.MetricsOptions { BootstrapSamples = 0 }).ToJson();
        Assert.Equal(1000, json["image_limit"]!["max_pixels"]!.GetValue<long>());
        Assert.Equal("refuse", json["image_limit"]!["policy"]!.GetValue<string>());
        Assert.Equal(1, json["image_limit"]!["refused"]!.GetValue<int>());

        // A file that grew past the limit since its scan is caught by the decoder's header check.
        Write(root, "1_fake/f2.png", Png(50, 50, 5));
        var grown = DetectorEvaluator.Score(detector, set.Images, options);
        Assert.Contains(grown.Skipped, s => s.RelativePath == "1_fake/f2.png" && s.Reason.Contains("image too large (50 x 50", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(SkiaSharp.SKEncodedImageFormat.Png, "png")]
    [InlineData(SkiaSharp.SKEncodedImageFormat.Jpeg, "jpeg")]
    [InlineData(SkiaSharp.SKEncodedImageFormat.Webp, "webp")]
    public void The_header_reader_agrees_with_the_decoder(SkiaSharp.SKEncodedImageFormat format, string name)
    {
        foreach (var (w, h) in new[] { (1, 1), (37, 5), (300, 17) })
        {
            var bytes = Encode(format, w, h, w * h);
            Assert.Equal((name, w, h), ImageHeader.Read(new MemoryStream(bytes)));
        }
        Assert.Null(ImageHeader.Read(new MemoryStream(NotAnImageText)));
        Assert.Null(ImageHeader.Read(new MemoryStream(Jpeg(8, 8, 1)[..20])));
    }
}
