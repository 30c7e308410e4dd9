import Foundation
import JamzCore

/// The ignition (ACC sense) side of the player: the same fade-and-save as SIGTERM, but the
/// daemon keeps running so a blip while cranking resumes at once.
extension Player {
    /// ACC off: fade out over the stop fade, then pause (alone) or stay silent (in a convoy,
    /// whose timeline goes on), and save. A car that was playing is saved as playing, so the
    /// next start resumes.
    func accOff() async {
        let fade = Nanos(config.stopFadeMs) * 1_000_000
        renderer.fade(to: 0, over: fade)
        if fade > 0 { try? await Task.sleep(nanoseconds: UInt64(fade)) }
        if convoyMode {
            accMuted = true
        } else if anchor?.playing == true {
            accHeld = true
            do { _ = try await pause() } catch { logger.error("ACC off: cannot pause: \(error)") }
        }
        do { try await save() } catch { logger.error("ACC off: cannot save player state: \(error)") }
        logger.info("ACC off: faded out and saved")
    }

    /// ACC back on within the grace period: the music comes back at once, fading in.
    func accOn() async {
        let fade = Nanos(config.resumeFadeMs) * 1_000_000
        if accHeld {
            do {
                let said = try await play(nil)       // fades in (Player.play)
                logger.info("ACC on: \(said)")
            } catch {
                accHeld = false
                renderer.fade(to: 1, over: fade)
                logger.error("ACC on: cannot resume: \(error)")
            }
        } else if accMuted {
            accMuted = false
            renderer.fade(from: 0, to: 1, over: fade)
            logger.info("ACC on: sound back")
        } else {
            // Nothing was playing at ACC off: undo the fade only.
            renderer.fade(to: 1, over: fade)
        }
    }

    /// Before the power goes: a durable save.
    func savedForPowerOff() async {
        do { try await save() } catch { logger.error("power-off: cannot save player state: \(error)") }
    }

    var currentVolume: Int { volume }
}
