import JamzCore

/// Spoken prompts (issue 17): the daemon hands the renderer a prompt's samples, already in the
/// output format; the renderer thread mixes them into the blocks it writes (`PromptMixer`),
/// ducking the music under them. With no music playing the renderer wakes, writes the prompt
/// over silence, and lets the output go again `releaseAfter` later.
extension Renderer {
    /// Queues a prompt (interleaved S16 at the output's rate and channel count). `key` names it:
    /// a prompt with the same key already waiting or playing makes this one a no-op (false).
    @discardableResult
    public func say(key: String, samples: [Int16]) -> Bool {
        lock.lock()
        let queued = mixer.enqueue(key: key, samples: samples)
        lock.unlock()
        if queued { poke() }
        return queued
    }

    /// The prompts' gain, 0...1 (perceptual, as `setVolume`: the gain is the square).
    public func setPromptVolume(_ v: Double) {
        let c = max(0, min(1, v))
        lock.lock(); mixer.volume = Float(c * c); lock.unlock()
    }

    /// A prompt is waiting or playing, or the music is still ramping back up after one.
    public var isSpeaking: Bool {
        lock.lock(); defer { lock.unlock() }
        return mixer.active
    }
}
