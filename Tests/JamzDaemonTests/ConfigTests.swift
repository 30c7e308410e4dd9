import JamzDaemon
import Testing

@Suite struct ConfigTests {
    @Test func validFileSetsEverySetting() {
        var c = DaemonConfig()
        let problems = c.apply(toml: """
            data_dir = "/data/jamz"
            socket = "/run/x.sock"
            output = "alsa:hw:1,0"
            [audio]
            sample_rate = 48000
            board_latency_ms = 2.5
            buffer_ms = 80
            [cache]
            max_tracks = 10
            max_bytes = 104857600
            [player]
            default_volume = 40
            stop_fade_ms = 100
            [resume]
            volume_cap = 30
            fade_in_ms = 800
            """)
        #expect(problems.isEmpty)
        #expect(c.dataDir == "/data/jamz" && c.socket == "/run/x.sock" && c.output == "alsa:hw:1,0")
        #expect(c.sampleRate == 48_000 && c.boardLatencyMs == 2.5 && c.bufferMs == 80)
        #expect(c.maxTracks == 10 && c.maxBytes == 104_857_600)
        #expect(c.defaultVolume == 40 && c.stopFadeMs == 100 && c.resumeVolumeCap == 30 && c.resumeFadeMs == 800)
    }

    @Test func theRelayIsOffUntilItsSettingsGoTogether() {
        var c = DaemonConfig()
        #expect(c.relay == nil)
        let ok = c.apply(toml: """
            [relay]
            url = "mqtts://broker.example:8883"
            ca_file = "/etc/jamz/broker-ca.pem"
            username = "car-7"
            password = "s3cret"
            """)
        #expect(ok.isEmpty)
        #expect(c.relay == .init(url: "mqtts://broker.example:8883", caFile: "/etc/jamz/broker-ca.pem", username: "car-7", password: "s3cret"))
        for (toml, says) in [("[relay]\nurl = \"http://x\"", "mqtt://"), ("[relay]\nurl = \"mqtt://x\"\nusername = \"u\"", "password"),
                             ("[relay]\nca_file = \"/ca.pem\"", "relay.url"), ("[relay]\nurl = \"mqtt://x\"\nca_file = \"/c\"", "mqtts")] {
            var bad = DaemonConfig()
            let problems = bad.apply(toml: toml)
            #expect(bad.relay == nil, "\(toml)")
            #expect(problems.count == 1 && problems[0].contains(says) && problems[0].contains("relay stays off"), "\(problems)")
        }
    }

    @Test func theBluetoothControllerIsHci0UnlessSetOrOff() {
        var c = DaemonConfig()
        #expect(c.bleController == 0)
        #expect(c.apply(toml: "[ble]\ncontroller = 1").isEmpty && c.bleController == 1)
        #expect(c.apply(toml: "[ble]\ncontroller = -1").isEmpty && c.bleController == -1)
        let problems = c.apply(toml: "[ble]\ncontroller = 99")
        #expect(problems.count == 1 && problems[0].contains("ble.controller") && c.bleController == -1)
    }

    @Test func badValuesAreReportedAndKeepTheirDefaults() {
        var c = DaemonConfig()
        let problems = c.apply(toml: """
            output = "speaker"
            colour = "blue"
            [audio]
            sample_rate = "fast"
            [cache]
            max_tracks = -3
            [player]
            default_volume = 70
            """)
        #expect(problems.count == 4)
        #expect(problems.contains { $0.contains("output") && $0.contains("alsa:DEVICE or file:PATH") })
        #expect(problems.contains { $0.contains("colour") && $0.contains("unknown") })
        #expect(problems.contains { $0.contains("audio.sample_rate") && $0.contains("integer") })
        #expect(problems.contains { $0.contains("cache.max_tracks") && $0.contains("1...") })
        let d = DaemonConfig()
        #expect(c.output == d.output && c.sampleRate == d.sampleRate && c.maxTracks == d.maxTracks)
    }

    @Test func notTOMLAtAll() {
        var c = DaemonConfig()
        let problems = c.apply(toml: "this is [not toml")
        #expect(problems.count == 1 && problems[0].contains("not valid TOML"))
        #expect(c == DaemonConfig())
    }
}
