#!/usr/bin/python3
"""Drives the phone page in Debian's headless Chromium (python3-selenium + chromium-driver), as a
passenger would: log in with the PIN, add a track from the library, then see a press made with
`jamz` (not on the page) arrive over the page's WebSocket. Screenshots go to SHOTS.

usage: page-browser.py URL PIN JAMZ SOCKET SHOTS [--rounds N] [--upload GOOD.mp3 BAD.mp3]
       page-browser.py URL PIN JAMZ SOCKET SHOTS --convoy OTHER-CAR
  (the second form: in a convoy led by OTHER-CAR, take control from the page and see OTHER-CAR's
  distance and bearing arrive)

Exit 0 when every step was seen; prints one line per step, and with --rounds N the times from a
`jamz toggle` to the page showing it (figures only: nothing here asserts a time).
"""
import os, statistics, subprocess, sys, time
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, pin, jamz, sock, shots = sys.argv[1:6]
rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 0
os.makedirs(shots, exist_ok=True)

opts = webdriver.ChromeOptions()
for a in ("--headless=new", "--no-proxy-server", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=412,915"):
    opts.add_argument(a)
from selenium.webdriver.chrome.service import Service
service = Service(executable_path="/usr/bin/chromedriver")
d = webdriver.Chrome(options=opts, service=service)
wait = WebDriverWait(d, 30, poll_frequency=0.02)

def shot(name):
    d.save_screenshot(os.path.join(shots, name + ".png"))

def text(id_):
    return d.find_element(By.ID, id_).text

def press(*args):
    subprocess.run([jamz, "--socket", sock, *args], check=True, stdout=subprocess.DEVNULL)

try:
    d.get(url)
    wait.until(lambda _: d.find_element(By.ID, "login").is_displayed())
    timing = d.execute_script("const n = performance.getEntriesByType('navigation')[0]; return [n.responseEnd - n.startTime, n.domContentLoadedEventEnd - n.startTime, n.transferSize, n.decodedBodySize];")
    print("page load: response %.1f ms, DOM ready %.1f ms, %d bytes transferred, %d bytes of HTML" % tuple(timing))
    shot("1-login")
    d.find_element(By.ID, "pin").send_keys("000000")
    d.find_element(By.ID, "loginbtn").click()
    wait.until(lambda _: "wrong PIN" in text("msg"))
    print("wrong PIN refused:", text("msg"))
    d.find_element(By.ID, "pin").clear()
    d.find_element(By.ID, "pin").send_keys(pin)
    d.find_element(By.ID, "loginbtn").click()
    wait.until(lambda _: d.find_element(By.ID, "app").is_displayed())
    print("logged in")
    if "--convoy" in sys.argv:
        other = sys.argv[sys.argv.index("--convoy") + 1]
        wait.until(lambda _: d.find_element(By.ID, "take").is_displayed())
        print("DJ before:", text("dj"))
        shot("convoy-1-follower")
        d.find_element(By.ID, "take").click()
        wait.until(lambda _: text("dj").startswith("This car is the DJ"))
        print("took control:", text("dj"))
        wait.until(lambda _: any(l.startswith(other + " ·") and " m" in l and "°" in l for l in text("cars").split("\n")))
        print("other car seen:", [l for l in text("cars").split("\n") if l.startswith(other)][0])
        shot("convoy-2-dj-and-cars")
        # The join QR, as a phone camera would see it on this screen: decoded by zbar.
        wait.until(lambda _: d.find_element(By.ID, "invitebox").is_displayed() and d.execute_script("return document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0"))
        d.execute_script("document.getElementById('qr').scrollIntoView()")
        qr = os.path.join(shots, "convoy-3-join-qr.png")
        d.find_element(By.ID, "qr").screenshot(qr)
        decoded = subprocess.run(["/usr/bin/zbarimg", "-q", "--raw", qr], capture_output=True, text=True).stdout.strip()
        print("join QR decodes to:", decoded, "(shown as text:", text("code") + ")")
        if decoded != text("code"):
            sys.exit("the join QR does not decode to the code shown")
        d.find_element(By.ID, "invite").click()
        wait.until(lambda _: text("short").startswith("join code"))
        print("short code on the page:", text("short"))
        shot("convoy-4-short-code")
        print("OK")
        sys.exit(0)
    wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#library button")) > 0)
    print("logged in; library:", len(d.find_elements(By.CSS_SELECTOR, "#library li")), "tracks")
    shot("2-logged-in")
    d.find_elements(By.CSS_SELECTOR, "#library button")[0].click()
    wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#queue li")) == 1)
    print("added from the page; playlist:", text("queue"))
    # Reorder and remove from the page (nothing plays yet, so every entry may change).
    # Read and pressed in one script each: the list is redrawn by every push.
    def titles():
        return d.execute_script("return [...document.querySelectorAll('#queue li')].map(li => li.firstChild.textContent.split(' — ')[0])")
    class entry_button:
        def __init__(self, n, label): self.n, self.label = n, label
        def click(self):
            d.execute_script("[...document.querySelectorAll('#queue li:nth-child(' + arguments[0] + ') button')].find(b => b.textContent === arguments[1]).click()", self.n, self.label)
    d.find_elements(By.CSS_SELECTOR, "#library button")[1].click()
    wait.until(lambda _: len(titles()) == 2)
    before = titles()
    entry_button(2, "↑").click()
    wait.until(lambda _: titles() == [before[1], before[0]])
    print("moved up from the page:", titles())
    shot("2b-moved")
    entry_button(1, "✕").click()
    wait.until(lambda _: titles() == [before[0]])
    print("removed from the page:", titles())
    # A press on the car (the CLI, as a button would): the page hears it over its WebSocket.
    press("play")
    wait.until(lambda _: "(playing)" in text("now"))
    print("jamz play seen live:", text("now"))
    shot("3-playing")
    times = []
    for i in range(rounds):
        want = "(paused)" if "(playing)" in text("now") else "(playing)"
        t0 = time.monotonic()
        press("toggle")
        wait.until(lambda _: want in text("now"))
        times.append((time.monotonic() - t0) * 1000)
    if times:
        s = sorted(times)
        print("jamz toggle -> page shows it: median %.1f ms, p90 %.1f ms, max %.1f ms over %d (includes starting the jamz process)"
              % (statistics.median(s), s[int(0.9 * (len(s) - 1))], s[-1], len(s)))
    if "--upload" in sys.argv:
        good, bad = sys.argv[sys.argv.index("--upload") + 1:][:2]
        before = len(d.find_elements(By.CSS_SELECTOR, "#library li"))
        t0 = time.monotonic()
        d.find_element(By.ID, "file").send_keys(os.path.abspath(good))
        d.find_element(By.ID, "send").click()
        wait.until(lambda _: text("upmsg").startswith("added") or text("upmsg").startswith("refused"))
        dt = time.monotonic() - t0
        print("upload of %s: %s (%.2f MB/s through the page)" % (os.path.basename(good), text("upmsg"), os.path.getsize(good) / dt / 1e6))
        wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#library li")) == before + 1)
        print("library now", before + 1, "tracks")
        shot("4-uploaded")
        d.find_element(By.ID, "file").clear()
        d.find_element(By.ID, "file").send_keys(os.path.abspath(bad))
        d.find_element(By.ID, "send").click()
        wait.until(lambda _: text("upmsg").startswith("refused"))
        print("bad upload:", text("upmsg"))
        shot("5-refused")
    shot("6-done")
    print("OK")
finally:
    d.quit()
